-- Takes back the reservation of a call that was rejected: a handler
-- reserved it, then lost the race to another handler's OriginateRejected.
-- The call never was one, so it leaves every counter as if never reserved
-- (the store, and so a rebuild, counts only claimed calls), once.
-- KEYS: 1 epoch, 2 conc, 3 cpm, 4 calls (hash), 5 seen,
--       6 calls:<day of the rejection>, 7 numcalls:<that day>,
--       8 calls:<the day before>, 9 numcalls:<the day before>
-- ARGV: 1 call_id, 2 now_ms, 3 retention_ms, 4 number_id ('' when none,
--       '?' when the caller does not know it yet), 5 the rejection day's
--       first ms
-- Reply: {-1} counters not loaded; {0} withdrawn; {1} not admitted (no-op);
--        {2} admitted, and the number is needed ('?'): nothing changed.
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
if redis.call('GET', KEYS[1]) ~= run_id then return {-1} end
local id = ARGV[1]
if redis.call('HGET', KEYS[4], id) ~= 'admitted' then return {1} end
local number = ARGV[4]
if number == '?' then return {2} end
redis.call('ZREM', KEYS[2], id)
-- The day it was counted on: its admission time while it is still in the
-- one-minute window (a withdrawal comes moments after the reservation),
-- else the rejection's day.
local calls_key, number_key = KEYS[6], KEYS[7]
local admitted_at = redis.call('ZSCORE', KEYS[3], id)
if admitted_at then
  redis.call('ZREM', KEYS[3], id)
  if tonumber(admitted_at) < tonumber(ARGV[5]) then
    calls_key, number_key = KEYS[8], KEYS[9]
  end
end
if tonumber(redis.call('GET', calls_key) or '0') > 0 then
  redis.call('DECR', calls_key)
end
if number ~= '' and tonumber(redis.call('HGET', number_key, number) or '0') > 0 then
  redis.call('HINCRBY', number_key, number, -1)
end
redis.call('HSET', KEYS[4], id, 'done')
redis.call('ZADD', KEYS[5], ARGV[2], id)
redis.call('PEXPIRE', KEYS[4], ARGV[3])
redis.call('PEXPIRE', KEYS[5], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {0}
