-- count: the live sessions in the expiry index. Entries ahead of `now` are live sessions (or
-- ones another writer deleted with a plain DEL since: cleanup's reconcile pass drops those);
-- due entries are settled first (see sweep), a batch per call.
-- KEYS: expiry index. ARGV: now, prefix, batch size, default idle timeout ms.
-- Returns the count, or -1 when a full batch was settled and the caller should call again.
local batch = tonumber(ARGV[3])
local removed, repaired, looked = sweep(KEYS[1], ARGV[2], tonumber(ARGV[1]), batch, tonumber(ARGV[4]))
if looked == batch then return -1 end
return redis.call('ZCARD', KEYS[1])
