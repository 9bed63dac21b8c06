-- _stake.lua: the amount-at-stake index, included (see gateway/store/scripts.py) by every
-- script that raises or decides a flag or moves a reward, so the index changes atomically with
-- what it reflects. Not a script of its own.
--
-- Two sorted sets per campaign (keys.py: flags_stake, every flag; flags_stake_open, the open
-- ones). A member is a flag id; its score packs, most significant first,
--   ((stake * 10001 + round(score * 10000)) * 3 + status) * 4 + kind
-- (status: open 0, fraud 1, legit 2; kind: click 0, referrer 1, participant 2, cluster 3), so
-- ZREVRANGE lists flags by amount at stake, then by score, and a reader filters by score,
-- status and kind without reading the flags (gateway.flags.StakeEntry unpacks it). Scores are
-- doubles: exact for amounts up to 2^53 / 120012, about 7.5e10 reward units.
--
-- A flag's amount at stake is what its decision would move: the credited and held rewards it
-- is about (gateway.rewards.RewardService.affected): a participant's own reward, the rewards of
-- a referrer's referrals, the rewards of the conversions made on a click, and for a cluster its
-- members' own rewards and their referrals' rewards, each reward once.
local STAKE_UNIT = 120012  -- one reward unit in the packed score: 10001 * 3 * 4
local STAKE_STATUS = {open = 0, fraud = 1, legit = 2}
local STAKE_KIND = {click = 0, referrer = 1, participant = 2, cluster = 3}

-- Redis converts Lua numbers to strings with 14 significant digits: write them whole.
local function _stake_num(x)
  return string.format('%.0f', x)
end

-- Add ``units`` to the amount at stake of the flags ``ids`` and of the cluster flags the
-- cluster index lists under ``members``, each once, where they are indexed (a flag raised
-- before the index existed waits for `refgate flags reindex`).
local function _stake_move(all_key, open_key, clusters_key, ids, members, units)
  if units == 0 then return end
  local seen, todo = {}, {}
  local function add(id)
    if id ~= '' and not seen[id] then
      seen[id] = true
      todo[#todo + 1] = id
    end
  end
  for _, id in ipairs(ids) do add(id) end
  for _, member in ipairs(members) do
    local listed = redis.call('HGET', clusters_key, member)
    if listed then
      for id in string.gmatch(listed, '[^,]+') do add(id) end
    end
  end
  local by = _stake_num(units * STAKE_UNIT)
  for _, id in ipairs(todo) do
    if redis.call('ZSCORE', all_key, id) then
      redis.call('ZINCRBY', all_key, by, id)
      if redis.call('ZSCORE', open_key, id) then
        redis.call('ZINCRBY', open_key, by, id)
      end
    end
  end
end

-- Index a flag from the ledger: ``totals_keys`` are referrers' reward totals hashes (credited +
-- held of their referrals), ``reward_keys`` reward hashes (credited or held count). A cluster's
-- members are added to the cluster index, and a member's own reward is skipped when it was
-- referred by a member (it is in that member's totals). Returns the amount at stake.
local function _stake_index(flag_key, all_key, open_key, clusters_key, totals_keys, reward_keys)
  local flag = redis.call('HMGET', flag_key, 'id', 'kind', 'status', 'score', 'members')
  local id, kind, status = flag[1], flag[2], flag[3]
  if not id then return 0 end
  local members = {}
  if kind == 'cluster' then
    for _, member in ipairs(cjson.decode(flag[5] or '[]')) do
      members[member] = true
      local listed = redis.call('HGET', clusters_key, member)
      if not listed then
        redis.call('HSET', clusters_key, member, id)
      elseif not string.find(',' .. listed .. ',', ',' .. id .. ',', 1, true) then
        redis.call('HSET', clusters_key, member, listed .. ',' .. id)
      end
    end
  end
  local stake = 0
  for _, key in ipairs(totals_keys) do
    local totals = redis.call('HMGET', key, 'credited', 'held')
    stake = stake + tonumber(totals[1] or '0') + tonumber(totals[2] or '0')
  end
  for _, key in ipairs(reward_keys) do
    local reward = redis.call('HMGET', key, 'amount', 'status', 'referrer')
    if (reward[2] == 'credited' or reward[2] == 'held') and not members[reward[3] or ''] then
      stake = stake + tonumber(reward[1] or '0')
    end
  end
  local score = math.floor(tonumber(flag[4] or '0') * 10000 + 0.5)
  score = math.max(0, math.min(score, 10000))
  local packed = _stake_num(
    ((stake * 10001 + score) * 3 + (STAKE_STATUS[status] or 0)) * 4 + (STAKE_KIND[kind] or 0))
  redis.call('ZADD', all_key, packed, id)
  if status == 'open' then
    redis.call('ZADD', open_key, packed, id)
  else
    redis.call('ZREM', open_key, id)
  end
  return stake
end

-- A flag decided (or its decision corrected): its status in the index; out of the open index.
local function _stake_restatus(all_key, open_key, id, status)
  local packed = redis.call('ZSCORE', all_key, id)
  if packed then
    local value = tonumber(packed)
    local old = math.floor(value / 4) % 3
    redis.call('ZADD', all_key, _stake_num(value + (STAKE_STATUS[status] - old) * 4), id)
  end
  if status ~= 'open' then
    redis.call('ZREM', open_key, id)
  end
end
