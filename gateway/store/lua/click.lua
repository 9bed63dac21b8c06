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
-- KEYS[7]       hash: the campaign's click history of the click's hour (fields below)
-- KEYS[8]       hash: the same, of the hour before
-- KEYS[9]       HyperLogLog: prefixes the referrer's links were opened from today
-- KEYS[10]      set: the referrer's own browser (visitor id), phone (IP hash|agent hash) and
--               network prefix, filled when they join
-- KEYS[11]      hash: referrer risk (numeric id -> '<state>|<score>|<source>', written off the
--               click path by the flagging jobs and by review decisions; gateway.referrer_risk)
-- KEYS[n..]   the record key of each event to record, in the order of the events below
--             (n = 12 with a current click, 7 without)
-- ARGV[1]     referrer numeric id of the current click, or '' when there is no current click
-- With a current click:
-- ARGV[2]     visitor id   ARGV[3] '1' if the visitor is returning (cookie), else '0'
-- ARGV[4]     device (IP hash|agent hash)   ARGV[5] network prefix
-- ARGV[6]     the click's time (unix seconds)
-- ARGV[7]     the click's minute of the hour (0-59)
-- ARGV[8]     the click's hour (unix seconds // 3600)
-- ARGV[9]     IP hash
-- Then, only when there are events to record (most clicks carry none: each argument costs the
-- server about a thousand instructions to pass):
-- ARGV[m]     click record TTL in seconds (the attribution window)   (m = 10 with a current
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
-- referrer's risk entry ('' when none), the referrer's latest click times (at least the 8
-- latest the hour before and this hour knew, newest first, joined by ',')}.
-- Arguments to redis.call are strings, numbers included: Redis formats a Lua number with
-- snprintf, which cost more than the command it was an argument of.
-- An event whose click record exists already is skipped: redelivery is harmless. The counters
-- of the events recorded are summed first and written once per field: the recorder sends events
-- in batches (a click carries them once several wait), and most share their fields.
-- The reply's 21 slots are made at once (a constructor sizes the table; filling a 3-slot table
-- to 28 grew it four times). Trailing nils end the reply where the values do.
local reply = {0, 0, 0, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil,
  nil, nil, nil, nil, nil}
local key_base, arg_base = 7, 2

-- The click's history of an hour is one hash per campaign (KEYS[7]): one HMGET reads what the
-- click needs of it and one HSET writes it back. A key per subject and window cost a command
-- each (a BITFIELD for each subject's counters, an LPUSH and an LRANGE for the link's latest
-- times, a PFADD for each distinct count), and an EXPIRE for each new key: most addresses click
-- once. Fields, by subject (a visitor id, IP hash or prefix; a referrer's numeric id):
--   v:<visitor>  i:<ip>  p:<prefix>   its counts: this hour's (u32), the minute of its last
--                click (u8), that minute's count (u16); i: then the distinct visitors behind
--                the IP this hour (u32)
--   r:<referrer>  the same counts, then the distinct prefixes its links were opened from this
--                hour (u32), its count the hour before (u32, read once an hour) and today's
--                distinct prefixes (u32: the count of KEYS[9], which only this referrer's clicks
--                from a prefix new this hour can change, so it is read only after those)
--   t:<referrer>  its latest click times, newest first, joined by ','
--   x:<ip>|<visitor>, n:<referrer>|<prefix>  '1': this pair was seen this hour (the distinct
--                counts above are exact)
-- Counts are big-endian bytes (string.byte and string.char): formatting a number as text in Lua
-- or Redis goes through snprintf, which cost more than a command. Counts saturate (u16 minutes,
-- u32 hours): a flood stays at the top, it never wraps to a small count that looks calm.
-- The hash's TTL is set on each referrer's first click of the hour (it outlives the hour after
-- it, which reads it as the hour before); a big hash expiring is freed lazily
-- (lazyfree-lazy-expire, see the README).
local minute
local byte, char = string.byte, string.char

-- The hour's and the minute's counts with this click, from a field's bytes (false when the
-- field is new this hour).
local function tick(value)
  if not value then
    return 1, 1
  end
  local a, b, c, d, m, e, f = byte(value, 1, 7)
  local hour = ((a * 256 + b) * 256 + c) * 256 + d + 1
  if hour > 4294967295 then
    hour = 4294967295
  end
  if m ~= minute then
    return hour, 1
  end
  local in_minute = e * 256 + f + 1
  if in_minute > 65535 then
    in_minute = 65535
  end
  return hour, in_minute
end

-- n as 4 big-endian bytes.
local function u32(n)
  local d = n % 256
  n = (n - d) / 256
  local c = n % 256
  n = (n - c) / 256
  local b = n % 256
  return (n - b) / 256, b, c, d
end

-- A field's counts as bytes; ... are the bytes that follow them (i: and r: fields).
local function counts(hour, in_minute, ...)
  local e = in_minute % 256
  local a, b, c, d = u32(hour)
  return char(a, b, c, d, minute, (in_minute - e) / 256, e, ...)
end

-- The u32 at byte i of a field (0 when the field is new).
local function at(value, i)
  if not value then
    return 0
  end
  local a, b, c, d = byte(value, i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

-- The click's history (counts, distinct counts, latest times) is scoring state that expires in
-- hours: it is not written to the AOF nor sent to replicas, which halves what each click
-- appends to the AOF. After a restart or a failover the velocity windows start empty; the
-- events, counters and timeline below are propagated as usual. replicate_commands() makes sure
-- the script runs in effects replication, which set_repl needs (the default since Redis 5;
-- always so in 7).
redis.replicate_commands()
if ARGV[1] ~= '' then
  key_base, arg_base, minute = 12, 10, tonumber(ARGV[7])
  redis.set_repl(redis.REPL_NONE)
  local referrer, visitor, returning, prefix, now, ip =
    ARGV[1], ARGV[2], ARGV[3], ARGV[5], ARGV[6], ARGV[9]
  reply[1] = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
  reply[2] = tonumber(redis.call('HGET', KEYS[2], referrer) or '0')
  local f_visitor, f_ip, f_prefix = 'v:' .. visitor, 'i:' .. ip, 'p:' .. prefix
  local f_referrer, f_times = 'r:' .. referrer, 't:' .. referrer
  local f_pair, f_network = 'x:' .. ip .. '|' .. visitor, 'n:' .. referrer .. '|' .. prefix
  local got = redis.call('HMGET', KEYS[7], f_visitor, f_ip, f_prefix, f_referrer, f_times,
    f_pair, f_network)
  local ip_1h, ip_1m = tick(got[2])
  local prefix_1h, prefix_1m = tick(got[3])
  local referrer_value, times = got[4], got[5]
  local referrer_1h, referrer_1m = tick(referrer_value)
  local ip_visitors, networks, before = at(got[2], 8), at(referrer_value, 8), 0
  if not got[6] then
    ip_visitors = ip_visitors + 1
  end
  if not got[7] then
    networks = networks + 1
  end
  if referrer_value then
    before = at(referrer_value, 12)
  else
    -- The referrer's first click of the hour: its count and latest times of the hour before.
    local earlier = redis.call('HMGET', KEYS[8], f_referrer, f_times)
    before, times = at(earlier[1], 1), earlier[2]
  end
  -- The latest times, newest first: at least 8 are kept (a time is at most 18 characters).
  if times then
    times = now .. ',' .. times
    local cut = #times > 200 and string.find(times, ',', 152, true)
    if cut then
      times = string.sub(times, 1, cut - 1)
    end
  else
    times = now
  end
  local ip_value = counts(ip_1h, ip_1m, u32(ip_visitors))
  local prefix_value = counts(prefix_1h, prefix_1m)
  -- The day's distinct prefixes stay a HyperLogLog: a day of them per link is too many to
  -- keep exactly in the hour's hash. Its name carries the day, so a TTL set once outlives it.
  local today
  if got[7] then  -- a prefix seen this hour is in today's count already
    today = at(referrer_value, 16)
  else
    local added = redis.call('PFADD', KEYS[9], prefix)
    today = redis.call('PFCOUNT', KEYS[9])
    if added == 1 and today == 1 then  -- just made (a known key's change leaves a count above 1)
      redis.call('EXPIRE', KEYS[9], '172800')
    end
  end
  local n1, n2, n3, n4 = u32(networks)
  local b1, b2, b3, b4 = u32(before)
  local referrer_counts = counts(referrer_1h, referrer_1m, n1, n2, n3, n4, b1, b2, b3, b4,
    u32(today))
  if returning == '1' then  -- a new visitor id has no history worth counting
    local visitor_1h, visitor_1m = tick(got[1])
    reply[4], reply[5] = visitor_1m, visitor_1h
    redis.call('HSET', KEYS[7], f_visitor, counts(visitor_1h, visitor_1m), f_ip, ip_value,
      f_prefix, prefix_value, f_referrer, referrer_counts, f_times, times, f_pair, '1',
      f_network, '1')
  else
    reply[4], reply[5] = 0, 0
    redis.call('HSET', KEYS[7], f_ip, ip_value, f_prefix, prefix_value, f_referrer,
      referrer_counts, f_times, times, f_pair, '1', f_network, '1')
  end
  if not referrer_value then  -- after the HSET: the hash may be new
    redis.call('EXPIRE', KEYS[7], '7200')
  end
  local own = redis.call('SMISMEMBER', KEYS[10], visitor, ARGV[4], prefix)
  -- Straight into the reply, in its documented order (a table of them to copy cost a table
  -- and a loop a click).
  reply[6], reply[7], reply[8], reply[9] = ip_1m, ip_1h, prefix_1m, prefix_1h
  reply[10], reply[11], reply[12], reply[13] = ip_visitors, referrer_1m, referrer_1h, networks
  reply[14], reply[15], reply[16], reply[17] = today, own[1], own[2], own[3]
  reply[18] = before
  reply[19] = tonumber(redis.call('HGET', KEYS[6], ARGV[8] .. '|clicks') or '0')
  reply[20] = redis.call('HGET', KEYS[11], referrer) or ''
  reply[21] = times
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
