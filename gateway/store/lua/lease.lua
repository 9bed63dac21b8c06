-- lease: take, renew or give up a lease held by one owner (the webhook deliverer), so a run
-- that outlives its scheduler lock never overlaps another process's run.
-- KEYS[1]  the lease key
-- ARGV[1]  owner (host:pid:random)   ARGV[2] milliseconds to hold it; '0' releases it
-- Returns 1 when the caller holds the lease (or released it), 0 when another owner does.
local holder = redis.call('GET', KEYS[1])
if ARGV[2] == '0' then
  if holder == ARGV[1] then redis.call('DEL', KEYS[1]) end
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
