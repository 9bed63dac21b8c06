-- add_tallies: add a batch of clicks to referrers' running tallies and read the totals back
-- (the flagger, once per batch of events). One command: a pipeline of five or more HINCRBYs
-- and an HGETALL per referrer cost the jobs process more CPU per click than the click path
-- spends scoring it, most of it in the client packing and parsing the commands.
--
-- KEYS[1..n]  the referrers' tally hashes, all in one slot (the campaign's hash tag)
-- ARGV        for each key in turn: the number m of fields it adds to, then m pairs (field,
--             amount); fields whose amount is 0 are left out by the caller
-- Returns one array per key: its fields and values after the additions, as HGETALL gives them.
local out, at = {}, 1
for i, key in ipairs(KEYS) do
  local m = tonumber(ARGV[at])
  for j = at + 1, at + 2 * m, 2 do
    redis.call('HINCRBY', key, ARGV[j], ARGV[j + 1])
  end
  at = at + 1 + 2 * m
  out[i] = redis.call('HGETALL', key)
end
return out
