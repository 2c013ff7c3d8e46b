-- cleanup, one batch of expiry index entries due by `now` (see sweep). KEYS: expiry index.
-- ARGV: now, prefix, batch size, default idle timeout ms.
-- Returns {removed, repaired, entries looked at}.
local removed, repaired, looked = sweep(KEYS[1], ARGV[2], tonumber(ARGV[1]), tonumber(ARGV[3]),
                                        tonumber(ARGV[4]))
return {removed, repaired, looked}
