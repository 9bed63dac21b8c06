-- click: the click path's one round trip. For the current click it reads the campaign config
-- version and the referrer's link generation, and reads-and-updates the click's history (the
-- velocity, fan-out, self-referral and timing data the detectors score). It also records the
-- events of earlier clicks of the same campaign that are waiting in this worker, so recording
-- costs no round trip of its own. The recorder calls it without a current click to flush
-- waiting events and to drain the spool.
--
-- KEYS[1]     campaign config hash (field ver)
-- KEYS[2]     referrer-generation hash (numeric id -> generation)
-- KEYS[3]     events stream
-- KEYS[4]     counters hash
-- KEYS[5]     visitors HyperLogLog
-- KEYS[6]     timeline hash ("<hour>|<counter>" -> count)
-- With a current click (ARGV[1] ~= ''), its history keys follow, all in the campaign's slot:
-- KEYS[7..10]   counters of this hour (see count below): visitor, IP (hash), network prefix,
--               referrer
-- KEYS[11..12]  HyperLogLogs: prefixes the referrer's links were opened from, this hour, today
-- KEYS[13]      HyperLogLog: visitors behind this IP this hour
-- KEYS[14]      set: the referrer's own browser (visitor id), phone (IP hash|agent hash) and
--               network prefix, filled when they join
-- KEYS[15]      list: times of the referrer's latest clicks
-- KEYS[16]      counters: referrer the hour before (is their traffic steady or a burst?)
-- KEYS[17]      hash: referrer risk (numeric id -> '<state>|<score>|<source>', written off the
--               click path by the flagging jobs and by review decisions; gateway.referrer_risk)
-- KEYS[n..]   the record key of each event to record, in the order of the events below
--             (n = 18 with a current click, 7 without)
-- ARGV[1]     referrer numeric id of the current click, or '' when there is no current click
-- With a current click:
-- ARGV[2]     visitor id   ARGV[3] '1' if the visitor is returning (cookie), else '0'
-- ARGV[4]     device (IP hash|agent hash)   ARGV[5] network prefix
-- ARGV[6]     the click's time (unix seconds)
-- ARGV[7]     bit offset of the click's minute in the counters (32 + 16 * minute of the hour)
-- ARGV[8]     the click's hour (unix seconds // 3600)
-- Then, only when there are events to record (most clicks carry none: each argument costs the
-- server about a thousand instructions to pass):
-- ARGV[m]     click record TTL in seconds (the attribution window)   (m = 9 with a current
--             click, 2 without)
-- ARGV[m+1]   stream MINID: entries older than this id are trimmed (approximately)
-- ARGV[m+2..] 4 values per event: event JSON (for the stream; it names the referrer by numeric
--             id), the click's record JSON (what conversions read: a part of the event),
--             visitor id or '', and its counter group: the event's hour (unix seconds // 3600),
--             '|', then its counter fields joined by ',' (each goes to the counters hash and,
--             prefixed with the hour, to the timeline)
-- Returns {config version, referrer generation, events newly recorded, then with a current
-- click: visitor 1m, visitor 1h, ip 1m, ip 1h, prefix 1m, prefix 1h, ip visitors 1h,
-- referrer 1m, referrer 1h, referrer networks 1h, referrer networks 24h, self visitor,
-- self device, self prefix, referrer the hour before, campaign clicks this hour, the
-- referrer's risk entry ('' when none), then the referrer's latest click times as strings,
-- newest first}.
-- Arguments to redis.call are strings, numbers included: Redis formats a Lua number with
-- snprintf, which cost more than the command it was an argument of.
-- An event whose click record exists already is skipped: redelivery is harmless. The counters
-- of the events recorded are summed first and written once per field: the recorder sends events
-- in batches (a click carries them once several wait), and most share their fields.
-- The reply's 28 slots are made at once (a constructor sizes the table; filling a 3-slot table
-- to 28 grew it four times). Trailing nils end the reply where the values do.
local reply = {0, 0, 0, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil,
  nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil}
local key_base, arg_base = 7, 2
local minute_bit

-- A subject's counters of one hour are one string: its count this hour (u32 at bit 0), then
-- its count in each minute of the hour (u16 at bit 32 + 16 * minute, saturating). One BITFIELD
-- call counts both windows; with a key per window it took two INCRs (and two EXPIREs when new,
-- which is most clicks: most addresses click once). Returns this minute's and this hour's counts.
local function count(key)
  local n = redis.call('BITFIELD', key, 'OVERFLOW', 'SAT',
    'INCRBY', 'u32', '0', '1', 'INCRBY', 'u16', minute_bit, '1')
  if n[1] == 1 then  -- just made: the name carries its hour, a TTL set once outlives it
    redis.call('EXPIRE', key, '7200')
  end
  return n[2], n[1]
end

-- HyperLogLogs' names carry their hour or day, so a TTL set once, when the key is made,
-- outlives its use (a TTL set on every change cost a call per click). ``new`` says the key
-- cannot exist yet (its subject's first click of the hour): no count to read.
local function distinct(key, member, ttl, new)
  local added = redis.call('PFADD', key, member)
  if new then
    redis.call('EXPIRE', key, ttl)
    return 1
  end
  local n = redis.call('PFCOUNT', key)
  if added == 1 and n == 1 then  -- just made (a change of a known key leaves a count above 1)
    redis.call('EXPIRE', key, ttl)
  end
  return n
end

-- The click's history (counters, HyperLogLogs, latest times) is scoring state that expires in
-- minutes to hours: it is not written to the AOF nor sent to replicas, which halves what each
-- click appends to the AOF. After a restart or a failover the velocity windows start empty;
-- the events, counters and timeline below are propagated as usual. replicate_commands() makes
-- sure the script runs in effects replication, which set_repl needs (the default since Redis 5;
-- always so in 7).
redis.replicate_commands()
if ARGV[1] ~= '' then
  key_base, arg_base, minute_bit = 18, 9, ARGV[7]
  redis.set_repl(redis.REPL_NONE)
  reply[1] = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
  reply[2] = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
  local visitor, returning, device, prefix, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
  local visitor_1m, visitor_1h = 0, 0
  if returning == '1' then  -- a new visitor id has no history worth counting
    visitor_1m, visitor_1h = count(KEYS[7])
  end
  local ip_1m, ip_1h = count(KEYS[8])
  local prefix_1m, prefix_1h = count(KEYS[9])
  local referrer_1m, referrer_1h = count(KEYS[10])
  local own = redis.call('SMISMEMBER', KEYS[14], visitor, device, prefix)
  -- The latest 8 times are read (LRANGE below); the list is trimmed back to them, and its TTL
  -- renewed, when it is made and then every 9th click rather than on each. A link clicked
  -- fewer than 9 times in a day can lose its older times: only the timing detector reads
  -- them, and it looks for clicks seconds apart.
  local pushed = redis.call('LPUSH', KEYS[15], now)
  if pushed == 1 or pushed > 16 then
    redis.call('LTRIM', KEYS[15], '0', '7')
    redis.call('EXPIRE', KEYS[15], '86400')
  end
  -- Straight into the reply, in its documented order (a table of them to copy cost a table
  -- and a loop a click).
  reply[4], reply[5], reply[6], reply[7], reply[8], reply[9] =
    visitor_1m, visitor_1h, ip_1m, ip_1h, prefix_1m, prefix_1h
  reply[10] = distinct(KEYS[13], visitor, '7200', ip_1h == 1)
  reply[11], reply[12] = referrer_1m, referrer_1h
  reply[13] = distinct(KEYS[11], prefix, '7200', referrer_1h == 1)
  reply[14] = distinct(KEYS[12], prefix, '172800', false)
  reply[15], reply[16], reply[17] = own[1], own[2], own[3]
  reply[18] = redis.call('BITFIELD_RO', KEYS[16], 'GET', 'u32', '0')[1]
  reply[19] = tonumber(redis.call('HGET', KEYS[6], ARGV[8] .. '|clicks') or '0')
  reply[20] = redis.call('HGET', KEYS[17], ARGV[1]) or ''
  local times = redis.call('LRANGE', KEYS[15], '0', '7')
  for i = 1, #times do
    reply[20 + i] = times[i]
  end
  redis.set_repl(redis.REPL_ALL)
end

local recorded = 0
local ttl, minid = ARGV[arg_base], ARGV[arg_base + 1]
-- Counts of the recorded events, summed here and written once per distinct field: a call
-- carries a batch of events (the recorder waits for a few), which mostly share their hour and
-- fields, so events are grouped by the two first and each group's fields split once.
local groups, visitors = {}, {}
local group_count = 0
for i = 0, (#ARGV - arg_base - 1) / 4 - 1 do
  local base = arg_base + 2 + i * 4
  local event, visitor = ARGV[base], ARGV[base + 2]
  -- SET NX is both the click record (read by conversions) and the exactly-once check.
  if redis.call('SET', KEYS[key_base + i], ARGV[base + 1], 'EX', ttl, 'NX') then
    recorded = recorded + 1
    -- The event names its referrer by numeric id; readers of the stream resolve the external
    -- ids (gateway.referrer_names), a lookup per batch there rather than a call per click here.
    redis.call('XADD', KEYS[3], 'MINID', '~', minid, '*', 'e', event)
    local group = ARGV[base + 3]  -- '<hour>|<field>,<field>...'
    local n = groups[group]
    if n == nil then
      group_count = group_count + 1
      groups[group] = 1
    else
      groups[group] = n + 1
    end
    if visitor ~= '' then
      visitors[#visitors + 1] = visitor
    end
  end
end
-- An increment of 1, the usual one, goes as the constant '1': a Lua number is formatted with
-- snprintf on its way to Redis.
local function increment(n)
  if n == 1 then
    return '1'
  end
  return tostring(n)
end
if group_count == 1 then
  -- One group (a batch of clicks alike, the usual case): its fields are written as they are
  -- split, with no tables of sums.
  local group, n = next(groups)
  local hour, counters = string.match(group, '^([^|]*)|(.*)$')
  local by = increment(n)
  for field in string.gmatch(counters, '[^,]+') do
    redis.call('HINCRBY', KEYS[4], field, by)
    redis.call('HINCRBY', KEYS[6], hour .. '|' .. field, by)
  end
elseif group_count > 1 then
  local totals, hourly = {}, {}
  for group, n in pairs(groups) do
    local hour, counters = string.match(group, '^([^|]*)|(.*)$')
    for field in string.gmatch(counters, '[^,]+') do
      totals[field] = (totals[field] or 0) + n
      local at = hour .. '|' .. field
      hourly[at] = (hourly[at] or 0) + n
    end
  end
  for field, n in pairs(totals) do
    redis.call('HINCRBY', KEYS[4], field, increment(n))
  end
  for field, n in pairs(hourly) do
    redis.call('HINCRBY', KEYS[6], field, increment(n))
  end
end
if #visitors > 0 then
  redis.call('PFADD', KEYS[5], unpack(visitors))
end
reply[3] = recorded
return reply
