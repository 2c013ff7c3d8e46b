-- rotate: move a live session to a fresh id. KEYS: old key, new key, expiry index (all in
-- one slot: the caller picks the new id so). ARGV: now, old sid, new sid, `indexed` (the user
-- tag whose index already holds the new sid, '' if none).
-- Returns {OK, new value, idle expiry} | {GONE} | {TAKEN} (new id in use) | {CORRUPT} |
-- {FOREIGN} | {UNINDEXED, user tag} (the caller indexes the new sid there and calls again).
local now, old_sid, new_sid, indexed = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]

local kind, v, m = read_session(KEYS[1])
if kind == 'corrupt' then return {CORRUPT} end
-- Another writer's value, or ours from before layout v2 (its user index entry under the old
-- name): the caller adopts it first, so the rotated session is indexed where list_user looks.
if kind == 'foreign' or (kind == 'meta' and m.legacy) then return {FOREIGN} end
if not is_live(kind, m, now) then return {GONE} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {TAKEN} end
if m.u ~= '' and m.u ~= indexed then return {UNINDEXED, m.u} end

local e = now + m.t
if m.a > 0 and m.a < e then e = m.a end
local value = meta_prefix_s(m.cs, m.ts, m.as, fmt(m.w + 1), m.u) .. string.sub(v, m.rest)
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], old_sid)
store_s(KEYS[2], value, KEYS[3], new_sid, fmt(e), e - now)
return {OK, value, fmt(e)}
