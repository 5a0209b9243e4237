-- Frees an admitted call's slot and counts its billed minutes, once.
-- KEYS: 1 epoch, 2 conc, 3 calls (hash), 4 minutes:<day the call ended>, 5 seen
-- ARGV: 1 call_id, 2 billed_minutes, 3 now_ms, 4 retention_ms, 5 day_ttl_ms
-- Reply: {-1} counters not loaded; {0} released; {1} not admitted (no-op).
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
if redis.call('GET', KEYS[1]) ~= run_id then return {-1} end
local id = ARGV[1]
if redis.call('HGET', KEYS[3], id) ~= 'admitted' then return {1} end
redis.call('ZREM', KEYS[2], id)
redis.call('HSET', KEYS[3], id, 'done')
-- Keep the `done` mark a full retention after the end, not the admission.
redis.call('ZADD', KEYS[5], ARGV[3], id)
local minutes = tonumber(ARGV[2])
if minutes > 0 then
  redis.call('INCRBY', KEYS[4], minutes)
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
end
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('PEXPIRE', KEYS[5], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {0}
