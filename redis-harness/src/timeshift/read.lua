-- One SCAN page of a pass (sync.rs): every key's PTTL and expiry, in one round trip.
-- KEYS: per page key, the key and the expiry index that would hold its score ({prefix}~exp,
-- or its slot's under a per-slot layout). ARGV: the prefix, then each page key's kind
-- (rules.rs's Kind::code): 's' session, 'u' user index, 'o' other.
-- Returns, per page key, {pttl} or {pttl, expiry}: a session's expiry index score; a user
-- index's latest expiry index score among its members (the store keeps an index alive as
-- long as its longest-lived member, and a refresh moves only that member's expiry index
-- score). Members without a score are not counted.
local skip = #ARGV[1]

local function score_of(exp, sid)
  local s = redis.call('ZSCORE', exp, sid)
  if s then return tonumber(s) end
  return nil
end

local out = {}
for i = 1, #KEYS / 2 do
  local key, exp, kind = KEYS[2 * i - 1], KEYS[2 * i], ARGV[i + 1]
  local row = {redis.call('PTTL', key)}
  local expiry
  if kind == 's' then
    expiry = score_of(exp, string.sub(key, skip + 1))
  elseif kind == 'u' and row[1] ~= -2 then
    for _, sid in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      local s = score_of(exp, sid)
      if s and (not expiry or s > expiry) then expiry = s end
    end
  end
  if expiry then row[2] = expiry end
  out[i] = row
end
return out
