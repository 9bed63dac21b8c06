-- convert: a click's visitor joins the campaign's referral tree, and the sharer's reward is
-- decided, in one atomic step: exactly once, first touch wins, never over budget.
--
-- KEYS[1]   idempotency hash (idempotency key -> answer JSON)
-- KEYS[2]   the new participant's hash
-- KEYS[3]   the parent's (referrer's) participant hash
-- KEYS[4]   the parent's children sorted set (participant -> join time)
-- KEYS[5]   budget hash (spent, held)
-- KEYS[6]   the referrer's reward totals hash (credited, held, conversions; denied and
--           clawed_back units are added by settle_reward.lua)
-- KEYS[7]   daily spend hash (day -> amount credited or held that day)
-- KEYS[8]   the conversion's reward hash
-- KEYS[9]   rewards sorted set (participant -> time)
-- KEYS[10]  the referrer's rewards sorted set (participant -> time)
-- KEYS[11]  ledger stream
-- KEYS[12]  conversions stream (accepted and refused)
-- KEYS[13]  counters hash (participants, depth:<n>, conversions, refused:<reason>)
-- KEYS[14]  the click's flag hash      KEYS[15] the referrer's flag hash
-- KEYS[16]  top sharers sorted set (referrer -> credited referrals)
-- KEYS[17]  outbox stream (webhook events to deliver: conversion.created, reward.<status>)
-- KEYS[18]  the new participant's own set (browser, phone, network prefix)
-- KEYS[19]  flags by amount at stake   KEYS[20] open flags by amount at stake (_stake.lua)
-- KEYS[21]  cluster index hash (member -> cluster flag ids)
-- KEYS[22]  click conversions hash (click id -> participants who converted on it)
-- KEYS[23..30] the rewards-by-status indexes, the campaign's then the referrer's (_status_index.lua)
-- KEYS[31..] the hashes of the parent's ancestors, root first (their subtree counts grow)
-- ARGV[1]   user (new participant id)      ARGV[2] referrer (parent id)
-- ARGV[3]   the parent's path as read ('a/b/c', '' for a root or a new root); the script
--           refuses with 'retry' if it changed meanwhile (a parent's path never changes once set)
-- ARGV[4]   click id   ARGV[5] idempotency key or ''   ARGV[6] now (unix seconds)
-- ARGV[7]   amount per conversion (0: no reward configured)   ARGV[8] budget_total
-- ARGV[9]   max_per_referrer (0: none)   ARGV[10] max_per_day (0: none)   ARGV[11] day number
-- ARGV[12]  creditable: 'credit', or 'hold:<reason>' / 'deny:<reason>' decided from the click
-- ARGV[13]  visitor id of the click ('' if none)   ARGV[14] device (ip hash|agent hash)
-- ARGV[15]  prefix
-- ARGV[16]  the new participant's referrer numeric id (for their own links' self checks)
-- ARGV[17..19] the ids of the flags a reward of this conversion is at stake in, whether raised
--           or not: the new participant's own, the referrer's and the click's
-- Returns {1, answer JSON} for a new conversion, {0, answer JSON} when it repeats an earlier
-- one (a retry, or the same user again: the first answer), {0, {error=...}} when refused.
-- include: _stake.lua
-- include: _status_index.lua
local user, referrer, parent_path = ARGV[1], ARGV[2], ARGV[3]
local click_id, idem, now = ARGV[4], ARGV[5], ARGV[6]

local function refuse(reason)
  redis.call('HINCRBY', KEYS[13], 'refused:' .. reason, 1)
  redis.call('XADD', KEYS[12], '*', 'status', 'refused', 'reason', reason, 'user', user,
    'referrer', referrer, 'click', click_id, 'ts', now)
  return {0, cjson.encode({error = reason})}
end

if idem ~= '' then
  local seen = redis.call('HGET', KEYS[1], idem)
  if seen then
    -- A key names one request. Sent again for another user it is the client's mistake, which
    -- would otherwise answer for someone else while the new user silently never joins.
    if cjson.decode(seen).participant ~= user then
      return {0, cjson.encode({error = 'idempotency_key_reused'})}
    end
    return {0, seen}
  end
end
-- The answer a join gave, rebuilt from the participant's hash: kept there as short fields (the
-- first reward outcome in 'first'), the hash stays in Redis's compact encoding (a JSON copy
-- made it three times bigger at a million participants).
local function answer_of(node)
  local parent, depth, click, first, stored = unpack(
    redis.call('HMGET', node, 'parent', 'depth', 'click', 'first', 'answer'))
  if stored then return stored end  -- written before 'first' existed
  if not first then return nil end
  local status, reason, amount = string.match(first, '^([^|]*)|([^|]*)|(.*)$')
  return cjson.encode({
    participant = user, parent = parent, depth = tonumber(depth), click_id = click,
    reward = {status = status, reason = reason, amount = tonumber(amount)},
  })
end

local existing = answer_of(KEYS[2])
if existing then
  return {0, existing}  -- first touch wins: the user joined already, here is that answer
end
-- A sharer on their own link, refused before anything is written (not even their root node).
if user == referrer then return refuse('self_referral') end
if redis.call('EXISTS', KEYS[2]) == 1 then
  -- A sharer the campaign started with (a root) who never joined through a link.
  return refuse('already_participant')
end

-- The parent: a participant already, or a sharer the campaign started with (a new root).
local stored_path = redis.call('HGET', KEYS[3], 'path')
if stored_path == false then
  if parent_path ~= '' then return {0, cjson.encode({error = 'retry'})} end
  redis.call('HSET', KEYS[3], 'parent', '', 'depth', 0, 'path', '', 'joined', now, 'size', 0,
    'height', 0, 'root', 1)
  redis.call('HINCRBY', KEYS[13], 'participants', 1)
  redis.call('HINCRBY', KEYS[13], 'roots', 1)
  redis.call('HINCRBY', KEYS[13], 'depth:0', 1)
  stored_path = ''
elseif stored_path ~= parent_path then
  return {0, cjson.encode({error = 'retry'})}
end
-- Cycles: the user may not be an ancestor of their own parent. An ancestor is a participant
-- already, so the checks above refuse such a join first ('already_participant', 409): this one
-- is a guard should a participant ever exist without that record.
for ancestor in string.gmatch(parent_path, '[^/]+') do
  if ancestor == user then return refuse('cycle') end
end

-- Join: O(depth) work, no scans. Every ancestor's subtree grows by one.
local parent_depth = tonumber(redis.call('HGET', KEYS[3], 'depth') or '0')
local depth = parent_depth + 1
local path = referrer
if parent_path ~= '' then path = parent_path .. '/' .. referrer end
redis.call('HSET', KEYS[2], 'parent', referrer, 'depth', depth, 'path', path, 'joined', now,
  'size', 0, 'height', 0, 'click', click_id, 'visitor', ARGV[13], 'device', ARGV[14],
  'prefix', ARGV[15])
redis.call('ZADD', KEYS[4], now, user)
if redis.call('ZCARD', KEYS[4]) == 1 then
  redis.call('HINCRBY', KEYS[13], 'parents', 1)  -- for the branching factor
end
redis.call('HINCRBY', KEYS[13], 'participants', 1)
redis.call('HINCRBY', KEYS[13], 'depth:' .. depth, 1)
redis.call('HINCRBY', KEYS[13], 'conversions', 1)
-- The parent, then each ancestor from the nearest up: size +1, height at least the distance.
local function grow(key, distance)
  redis.call('HINCRBY', key, 'size', 1)
  if tonumber(redis.call('HGET', key, 'height') or '0') < distance then
    redis.call('HSET', key, 'height', distance)
  end
end
grow(KEYS[3], 1)
local ancestors = #KEYS - 30
for i = ancestors, 1, -1 do
  grow(KEYS[30 + i], ancestors - i + 2)
end
-- The new participant's own devices and networks, for self-referral checks on their links.
local own = {}
for i = 13, 15 do
  if ARGV[i] ~= '' then own[#own + 1] = ARGV[i] end
end
if #own > 0 then
  redis.call('SADD', KEYS[18], unpack(own))
  redis.call('EXPIRE', KEYS[18], 90 * 86400)
end

-- The reward, decided atomically against the budget and the caps.
local amount = tonumber(ARGV[7])
local status, reason = 'credited', ''
local function flag_status(key)
  return redis.call('HGET', key, 'status')
end
local click_flag, referrer_flag = flag_status(KEYS[14]), flag_status(KEYS[15])
if amount == 0 then
  status, reason = 'denied', 'no_reward_configured'
elseif referrer_flag == 'fraud' then
  status, reason = 'denied', 'referrer_fraud'
elseif click_flag == 'fraud' then
  status, reason = 'denied', 'click_fraud'
elseif string.sub(ARGV[12], 1, 5) == 'deny:' then
  status, reason = 'denied', string.sub(ARGV[12], 6)
elseif referrer_flag == 'open' or click_flag == 'open' then
  status, reason = 'held', 'flagged'
elseif string.sub(ARGV[12], 1, 5) == 'hold:' then
  status, reason = 'held', string.sub(ARGV[12], 6)
end
if status ~= 'denied' then
  local spent = tonumber(redis.call('HGET', KEYS[5], 'spent') or '0')
  local held = tonumber(redis.call('HGET', KEYS[5], 'held') or '0')
  local mine = tonumber(redis.call('HGET', KEYS[6], 'credited') or '0')
    + tonumber(redis.call('HGET', KEYS[6], 'held') or '0')
  local today = tonumber(redis.call('HGET', KEYS[7], ARGV[11]) or '0')
  if spent + held + amount > tonumber(ARGV[8]) then
    status, reason = 'denied', 'budget_exhausted'
  elseif tonumber(ARGV[9]) > 0 and mine + amount > tonumber(ARGV[9]) then
    status, reason = 'denied', 'referrer_cap'
  elseif tonumber(ARGV[10]) > 0 and today + amount > tonumber(ARGV[10]) then
    status, reason = 'denied', 'daily_cap'
  end
end
local credited_amount = 0
if status == 'credited' then
  credited_amount = amount
  redis.call('HINCRBY', KEYS[5], 'spent', amount)
  redis.call('HINCRBY', KEYS[6], 'credited', amount)
  redis.call('HINCRBY', KEYS[7], ARGV[11], amount)
  redis.call('ZINCRBY', KEYS[16], 1, referrer)
elseif status == 'held' then
  credited_amount = amount
  redis.call('HINCRBY', KEYS[5], 'held', amount)
  redis.call('HINCRBY', KEYS[6], 'held', amount)
  redis.call('HINCRBY', KEYS[7], ARGV[11], amount)
end
if redis.call('HINCRBY', KEYS[6], 'conversions', 1) == 1 then
  -- A referrer's first reward: settle_reward.lua keeps their denied and clawed_back units
  -- from the start, so they never need referrer_units.lua's one-off count.
  redis.call('HSET', KEYS[6], 'units_kept', 1)
end
redis.call('HINCRBY', KEYS[13], 'rewards:' .. status, 1)
redis.call('HSET', KEYS[8], 'user', user, 'referrer', referrer, 'click', click_id,
  'status', status, 'reason', reason, 'amount', credited_amount, 'ts', now, 'day', ARGV[11])
redis.call('ZADD', KEYS[9], now, user)
redis.call('ZADD', KEYS[10], now, user)
_status_index(23, user, nil, status, now)
redis.call('XADD', KEYS[11], '*', 'type', status, 'user', user, 'referrer', referrer,
  'click', click_id, 'amount', credited_amount, 'reason', reason, 'ts', now)
redis.call('XADD', KEYS[12], '*', 'status', 'accepted', 'user', user, 'referrer', referrer,
  'click', click_id, 'ts', now)
-- What a click flag is about, and what this reward adds to the amounts at stake.
local converted = redis.call('HGET', KEYS[22], click_id)
redis.call('HSET', KEYS[22], click_id, converted and (converted .. ',' .. user) or user)
_stake_move(KEYS[19], KEYS[20], KEYS[21], {ARGV[17], ARGV[18], ARGV[19]}, {user, referrer},
  credited_amount)

local answer = cjson.encode({
  participant = user, parent = referrer, depth = depth, click_id = click_id,
  reward = {status = status, reason = reason, amount = credited_amount},
})
redis.call('HSET', KEYS[2], 'first', status .. '|' .. reason .. '|' .. credited_amount)
if idem ~= '' then redis.call('HSET', KEYS[1], idem, answer) end
redis.call('XADD', KEYS[17], '*', 'event', 'conversion.created', 'data', answer)
-- reward.credited, reward.held or reward.denied: the reward's first state.
redis.call('XADD', KEYS[17], '*', 'event', 'reward.' .. status, 'data', answer)
return {1, answer}
