-- Loads a snapshot computed from the event store, unless this very Redis
-- process already holds them (another worker may have rebuilt them
-- meanwhile). The epoch holds the server's run_id: counters restored from a
-- snapshot file, or found on a promoted replica, carry another server's
-- run_id and are rebuilt, since they may miss admissions made since.
-- KEYS: 1 epoch, 2 conc, 3 cpm, 4 calls:<day>, 5 minutes:<day>,
--       6 calls (hash), 7 seen, 8 numcalls:<day> (hash)
-- ARGV: 1 snapshot JSON {active: [[id, expiry_ms]], recent: [[id, at_ms]],
--       daily_calls, daily_minutes, calls: [[id, state, touched_ms]],
--       numbers: [[number_id, daily_calls]]}
--       (numbers as strings), 2 now_ms, 3 retention_ms, 4 (unused),
--       5 day_ttl_ms
-- Reply: 1 loaded; 0 already loaded (nothing written).
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
if redis.call('GET', KEYS[1]) == run_id then return 0 end
-- Leftovers of a partial loss (eviction, say) would be counted twice.
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
local s = cjson.decode(ARGV[1])
local now = tonumber(ARGV[2])

local last = now
for _, a in ipairs(s.active) do
  redis.call('ZADD', KEYS[2], a[2], a[1])
  last = math.max(last, tonumber(a[2]))
end
if #s.active > 0 then redis.call('PEXPIRE', KEYS[2], last - now + 60000) end

for _, r in ipairs(s.recent) do redis.call('ZADD', KEYS[3], r[2], r[1]) end
if #s.recent > 0 then redis.call('PEXPIRE', KEYS[3], 61000) end

if tonumber(s.daily_calls) > 0 then
  redis.call('SET', KEYS[4], s.daily_calls, 'PX', ARGV[5])
end
if tonumber(s.daily_minutes) > 0 then
  redis.call('SET', KEYS[5], s.daily_minutes, 'PX', ARGV[5])
end

for _, n in ipairs(s.numbers) do redis.call('HSET', KEYS[8], n[1], n[2]) end
if #s.numbers > 0 then redis.call('PEXPIRE', KEYS[8], ARGV[5]) end

for _, c in ipairs(s.calls) do
  redis.call('HSET', KEYS[6], c[1], c[2])
  redis.call('ZADD', KEYS[7], c[3], c[1])
end
if #s.calls > 0 then
  redis.call('PEXPIRE', KEYS[6], ARGV[3])
  redis.call('PEXPIRE', KEYS[7], ARGV[3])
end
redis.call('SET', KEYS[1], run_id, 'PX', ARGV[3])
return 1
