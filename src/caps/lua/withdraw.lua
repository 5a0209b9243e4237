-- Takes back the reservation of a call that was rejected: a handler
-- reserved it, then lost the race to another handler's OriginateRejected.
-- The call never was one, so it leaves every counter as if never reserved
-- (the store, and so a rebuild, counts only claimed calls), once. Called
-- only for a call whose rejection is committed, which nothing can undo.
-- KEYS: 1 epoch, 2 conc, 3 cpm, 4 calls (hash), 5 seen,
--       6 calls:<today>, 7 numcalls:<today>,
--       8 calls:<yesterday>, 9 numcalls:<yesterday>,
--       10 calls:<tomorrow>, 11 numcalls:<tomorrow> (another host's clock
--       may have counted the call on the next day already)
-- ARGV: 1 call_id, 2 now_ms, 3 retention_ms, 4 number_id ('' when none,
--       '?' when the caller does not know it yet), 5 today's first ms,
--       6 yesterday's first ms, 7 prune_before_ms (now - retention),
--       8 a remembered-only call's age score (prune_before + 10 minutes),
--       9 tomorrow's first ms
-- Reply: {-1} counters not loaded; {0} withdrawn; {1} nothing held (no-op,
--        but remembered: a reserve of this call from now on counts
--        nothing); {2} held, and the number is needed ('?'): nothing changed.
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
if redis.call('GET', KEYS[1]) ~= run_id then return {-1} end
local id = ARGV[1]
local held = redis.call('HGET', KEYS[4], id)
if held ~= 'admitted' then
  if not held then
    -- A handler may still be about to reserve it (it read the call before
    -- the rejection): its reserve now finds the call done and counts
    -- nothing. Kept ten minutes (a handler reserves within seconds of its
    -- read), and a bounded batch of old entries pruned, so a flood of
    -- rejections with no admissions in between still ages out.
    redis.call('HSET', KEYS[4], id, 'done')
    redis.call('ZADD', KEYS[5], ARGV[8], id)
    local old = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', ARGV[7], 'LIMIT', 0, 100)
    if #old > 0 then
      redis.call('HDEL', KEYS[4], unpack(old))
      redis.call('ZREM', KEYS[5], unpack(old))
    end
    redis.call('PEXPIRE', KEYS[4], ARGV[3])
    redis.call('PEXPIRE', KEYS[5], ARGV[3])
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
  end
  return {1}
end
local number = ARGV[4]
if number == '?' then return {2} end
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
-- The day it was counted on: `seen` holds an admitted call's admission
-- time (nothing else touches it while it is admitted), by the clock of the
-- host that reserved it. A day older than yesterday no longer counts
-- against anything and is left alone.
local admitted_at = tonumber(redis.call('ZSCORE', KEYS[5], id) or '-1')
local calls_key, number_key
if admitted_at >= tonumber(ARGV[9]) then
  calls_key, number_key = KEYS[10], KEYS[11]
elseif admitted_at >= tonumber(ARGV[5]) then
  calls_key, number_key = KEYS[6], KEYS[7]
elseif admitted_at >= tonumber(ARGV[6]) then
  calls_key, number_key = KEYS[8], KEYS[9]
end
if calls_key then
  if tonumber(redis.call('GET', calls_key) or '0') > 0 then
    redis.call('DECR', calls_key)
  end
  if number ~= '' and tonumber(redis.call('HGET', number_key, number) or '0') > 0 then
    redis.call('HINCRBY', number_key, number, -1)
  end
end
redis.call('HSET', KEYS[4], id, 'done')
redis.call('ZADD', KEYS[5], ARGV[2], id)
redis.call('PEXPIRE', KEYS[4], ARGV[3])
redis.call('PEXPIRE', KEYS[5], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {0}
