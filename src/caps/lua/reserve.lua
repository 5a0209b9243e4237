-- Checks and reserves all four caps of one tenant, and the calling number's
-- own daily cap, atomically.
-- KEYS: 1 epoch, 2 conc, 3 cpm, 4 calls:<today>, 5 minutes:<today>,
--       6 calls (hash), 7 seen, 8 numcalls:<today> (hash number -> count)
-- ARGV: 1 now_ms, 2 call_id, 3 concurrent_max, 4 calls_per_minute,
--       5 daily_calls_max, 6 daily_minutes_max, 7 lease_expiry_ms,
--       8 window_start_ms (now - 60000), 9 secs_to_midnight,
--       10 retention_ms, 11 prune_before_ms (now - retention), 12 day_ttl_ms,
--       13 number_id ('' when none), 14 number_daily_max (-1 when uncapped)
-- Reply: {-1} counters not loaded (rebuild, then retry); {0} admitted;
--        {1} already admitted or done (nothing counted);
--        {2, dimension (1-5), limit, current, retry_after_s} refused.
-- Checks only read (ZCOUNT, GET), so a refusal writes nothing at all.
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
if redis.call('GET', KEYS[1]) ~= run_id then return {-1} end
local now = tonumber(ARGV[1])
local id = ARGV[2]
if redis.call('HEXISTS', KEYS[6], id) == 1 then return {1} end

local conc_max = tonumber(ARGV[3])
local conc = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf')
if conc >= conc_max then return {2, 1, conc_max, conc, 1} end

local cpm_max = tonumber(ARGV[4])
local cpm = redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[8], '+inf')
if cpm >= cpm_max then
  -- Room opens when the (cpm - cpm_max + 1)-th oldest admission leaves the
  -- window; with a limit of 0 there is none to wait for.
  local retry = 60
  local nth = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ARGV[8], '+inf',
    'WITHSCORES', 'LIMIT', cpm - cpm_max, 1)
  if nth[2] then retry = math.ceil((tonumber(nth[2]) + 60000 - now) / 1000) end
  if retry < 1 then retry = 1 end
  return {2, 2, cpm_max, cpm, retry}
end

local calls_max = tonumber(ARGV[5])
local calls = tonumber(redis.call('GET', KEYS[4]) or '0')
if calls >= calls_max then return {2, 3, calls_max, calls, tonumber(ARGV[9])} end

local minutes_max = tonumber(ARGV[6])
local minutes = tonumber(redis.call('GET', KEYS[5]) or '0')
if minutes >= minutes_max then
  return {2, 4, minutes_max, minutes, tonumber(ARGV[9])}
end

local number = ARGV[13]
local number_max = tonumber(ARGV[14])
if number ~= '' and number_max >= 0 then
  local from_number = tonumber(redis.call('HGET', KEYS[8], number) or '0')
  if from_number >= number_max then
    return {2, 5, number_max, from_number, tonumber(ARGV[9])}
  end
end

-- Admitted: drop what has lapsed, then count the call everywhere.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[7], id)
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[2], math.max(tonumber(last[2]) - now, 0) + 60000)

redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[8])
redis.call('ZADD', KEYS[3], ARGV[1], id)
redis.call('PEXPIRE', KEYS[3], 61000)

redis.call('INCR', KEYS[4])
redis.call('PEXPIRE', KEYS[4], ARGV[12])
if number ~= '' then
  redis.call('HINCRBY', KEYS[8], number, 1)
  redis.call('PEXPIRE', KEYS[8], ARGV[12])
end

redis.call('HSET', KEYS[6], id, 'admitted')
redis.call('ZADD', KEYS[7], ARGV[1], id)
-- Forget calls untouched for the retention, a bounded batch per admission.
local old = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', ARGV[11], 'LIMIT', 0, 100)
if #old > 0 then
  redis.call('HDEL', KEYS[6], unpack(old))
  redis.call('ZREM', KEYS[7], unpack(old))
end
redis.call('PEXPIRE', KEYS[6], ARGV[10])
redis.call('PEXPIRE', KEYS[7], ARGV[10])
redis.call('PEXPIRE', KEYS[1], ARGV[10])
return {0}
