-- count's and cleanup's batch of due expiry index entries (see settle in the prelude).
-- KEYS: expiry index, then the entries' session keys. ARGV: now, default idle timeout ms,
-- then the storage ids (in KEYS order). Returns {removed, repaired}.
local removed, repaired = settle(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 2, 3)
return {removed, repaired}
