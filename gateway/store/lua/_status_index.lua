-- _status_index.lua: the rewards-by-status indexes (keys.py: rewards_by_status and
-- referrer_rewards_by_status), included by every script that writes a reward's status, so a
-- listing filtered by status reads one sorted set kept atomically with the rewards. Not a
-- script of its own.
--
-- A script passes the eight keys of CampaignKeys.reward_status_indexes(referrer) in a row,
-- starting at KEYS[first]: the campaign's four (credited, held, denied, clawed_back), then the
-- referrer's four. A member is the participant, its score the conversion's time (the score in
-- the rewards index, so every listing pages the same order).
local STATUS_SLOT = {credited = 0, held = 1, denied = 2, clawed_back = 3}
local function _status_index(first, user, old, new, score)
  local slot = STATUS_SLOT[old]
  if slot then
    redis.call('ZREM', KEYS[first + slot], user)
    redis.call('ZREM', KEYS[first + 4 + slot], user)
  end
  slot = STATUS_SLOT[new]
  if slot then
    redis.call('ZADD', KEYS[first + slot], score, user)
    redis.call('ZADD', KEYS[first + 4 + slot], score, user)
  end
end
