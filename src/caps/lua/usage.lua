-- Reads the live counters; writes nothing.
-- KEYS: 1 epoch, 2 conc, 3 cpm, 4 calls:<today>, 5 minutes:<today>
-- ARGV: 1 now_ms, 2 window_start_ms
-- Reply: {-1} counters not loaded; {0, concurrent, calls_last_minute,
--        daily_calls, daily_minutes}.
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
if redis.call('GET', KEYS[1]) ~= run_id then return {-1} end
return {
  0,
  redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf'),
  redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[2], '+inf'),
  tonumber(redis.call('GET', KEYS[4]) or '0'),
  tonumber(redis.call('GET', KEYS[5]) or '0'),
}
