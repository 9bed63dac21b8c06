-- flag_stake: index one flag's amount at stake from the ledger (_stake.lua), whatever its
-- status: `refgate flags reindex` runs it over flags raised before the index existed.
-- KEYS[1]  the flag hash
-- KEYS[2]  flags by amount at stake   KEYS[3] open flags by amount at stake
-- KEYS[4]  cluster index hash (member -> cluster flag ids)
-- KEYS[5]  click conversions hash (click id -> participants who converted on it)
-- KEYS[6..] as raise_flag's KEYS[9..]: ARGV[1] totals hashes, then reward hashes
-- ARGV[1]  how many of KEYS[6..] are totals hashes
-- ARGV[2]  a click flag's conversions as read from KEYS[5] ('' for none, or not a click)
-- Returns the amount at stake, or 'retry' (nothing written) when the click's conversions
-- changed since the caller read them.
-- include: _stake.lua
local flag = redis.call('HMGET', KEYS[1], 'kind', 'subject')
if not flag[1] then return 0 end
if flag[1] == 'click' and (redis.call('HGET', KEYS[5], flag[2]) or '') ~= ARGV[2] then
  return 'retry'
end
local totals, rewards = {}, {}
for i = 6, #KEYS do
  if i - 5 <= tonumber(ARGV[1]) then
    totals[#totals + 1] = KEYS[i]
  else
    rewards[#rewards + 1] = KEYS[i]
  end
end
return _stake_index(KEYS[1], KEYS[2], KEYS[3], KEYS[4], totals, rewards)
