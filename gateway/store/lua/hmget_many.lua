-- hmget_many: the same fields of many hashes in one call (a page of a queue reads thousands;
-- one command is far cheaper for the client than a pipeline of thousands).
--
-- KEYS[1..n]  hashes, all in one slot (one campaign's hash tag)
-- ARGV[1..m]  field names
-- Returns one array per key: the fields' values (false where missing).
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('HMGET', key, unpack(ARGV))
end
return out
