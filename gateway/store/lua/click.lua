-- click: the click path's one round trip. It reads what the current click needs (campaign config
-- version, referrer link generation) and records the events of earlier clicks of the same
-- campaign that are waiting in this worker, so recording costs no round trip of its own. The
-- recorder calls it without a current click to flush waiting events and to drain the spool.
--
-- KEYS[1]     campaign config hash (field ver)
-- KEYS[2]     referrer-generation hash (numeric id -> generation)
-- KEYS[3]     events stream
-- KEYS[4]     counters hash
-- KEYS[5]     visitors HyperLogLog
-- KEYS[6]     referrer-external hash (numeric id -> external id)
-- KEYS[7]     timeline hash ("<hour>|<counter>" -> count)
-- KEYS[8..]   the click record key of each event to record, in the order of the events below
-- ARGV[1]     referrer numeric id of the current click, or '' when there is no current click
-- ARGV[2]     click record TTL in seconds (the attribution window)
-- ARGV[3]     stream MINID: entries older than this id are trimmed (approximately)
-- ARGV[4..]   5 values per event: event JSON, visitor id or '', referrer numeric id,
--             the event's hour (unix seconds // 3600), counter fields to increment joined by ','
--             (each goes to the counters hash and, prefixed with the hour, to the timeline)
-- Returns {config version, referrer generation, number of events newly recorded}.
-- An event whose click record exists already is skipped: redelivery is harmless.
local version, generation = 0, 0
if ARGV[1] ~= '' then
  version = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
  generation = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
end
local recorded = 0
local ttl = tonumber(ARGV[2])
for i = 0, (#ARGV - 3) / 5 - 1 do
  local base = 4 + i * 5
  local event, visitor, referrer_id = ARGV[base], ARGV[base + 1], ARGV[base + 2]
  local hour, counters = ARGV[base + 3], ARGV[base + 4]
  -- SET NX is both the click record (read by conversions) and the exactly-once check.
  if redis.call('SET', KEYS[8 + i], event, 'EX', ttl, 'NX') then
    recorded = recorded + 1
    local referrer = redis.call('HGET', KEYS[6], referrer_id) or ''
    redis.call('XADD', KEYS[3], 'MINID', '~', ARGV[3], '*', 'e', event, 'r', referrer)
    for field in string.gmatch(counters, '[^,]+') do
      redis.call('HINCRBY', KEYS[4], field, 1)
      redis.call('HINCRBY', KEYS[7], hour .. '|' .. field, 1)
    end
    if visitor ~= '' then
      redis.call('PFADD', KEYS[5], visitor)
    end
  end
end
return {version, generation, recorded}
