-- One SCAN page of a pass (sync.rs): every key's PTTL and expiry, in one round trip.
-- KEYS: the expiry index ({prefix}~exp), then the page's keys. ARGV: the prefix, then each
-- page key's kind (rules.rs's Kind::code): 's' session, 'u' user index, 'o' other.
-- Returns, per page key, {pttl} or {pttl, expiry}: a session's expiry index score; a user
-- index's latest expiry index score among its members (the store keeps an index alive as
-- long as its longest-lived member, and a refresh moves only that member's expiry index
-- score). Members without a score are not counted.
local exp, skip = KEYS[1], #ARGV[1]

local function score_of(sid)
  local s = redis.call('ZSCORE', exp, sid)
  if s then return tonumber(s) end
  return nil
end

local out = {}
for i = 2, #KEYS do
  local key, kind = KEYS[i], ARGV[i]
  local row = {redis.call('PTTL', key)}
  local expiry
  if kind == 's' then
    expiry = score_of(string.sub(key, skip + 1))
  elseif kind == 'u' and row[1] ~= -2 then
    for _, sid in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      local s = score_of(sid)
      if s and (not expiry or s > expiry) then expiry = s end
    end
  end
  if expiry then row[2] = expiry end
  out[i - 1] = row
end
return out
