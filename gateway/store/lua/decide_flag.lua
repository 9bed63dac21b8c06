-- decide_flag: record the risk team's decision on a flag, once, and append it as a label.
-- KEYS[1]  the flag hash
-- KEYS[2]  campaign's open flags sorted set
-- KEYS[3]  campaign's decisions stream (labels for training, inputs for the reward ledger)
-- KEYS[4]  flags by amount at stake   KEYS[5] open flags by amount at stake (_stake.lua)
-- ARGV[1]  flag id   ARGV[2] decision (fraud|legit)   ARGV[3] note   ARGV[4] who
-- ARGV[5]  when      ARGV[6] the decision as JSON (the stream entry)
-- ARGV[7]  the status the decider saw ('' : any): when the flag's status is another (someone
--          decided it meanwhile), nothing is written
-- Returns 1, or 0 when ARGV[7] did not match. A later decision replaces an earlier one (a
-- reviewer may correct a mistake); every decision stays in the stream. The rewards move
-- afterwards (gateway.rewards), each move changing the amount at stake in settle_reward.lua.
-- include: _stake.lua
if ARGV[7] ~= '' and redis.call('HGET', KEYS[1], 'status') ~= ARGV[7] then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'note', ARGV[3], 'decided_by', ARGV[4],
  'decided_at', ARGV[5])
redis.call('ZREM', KEYS[2], ARGV[1])
_stake_restatus(KEYS[4], KEYS[5], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[3], '*', 'd', ARGV[6])
return 1
