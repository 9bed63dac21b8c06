-- referrer_risk: set or clear one referrer's risk entry, which the click path reads (click.lua).
-- KEYS[1]  the campaign's referrer-risk hash (numeric referrer id -> '<state>|<score>|<source>')
-- ARGV[1]  numeric referrer id
-- ARGV[2]  'open': a finding under review; 'suspect': a suspicion no flag was raised for
--          (e.g. the link is posted on public pages). Written over an entry of a lower state
--          (suspect < open < fraud), or of the same state with a score no higher
--          'fraud': a reviewer's decision; always written
--          'clear': a reviewer decided the referrer legit; the entry goes
-- ARGV[3]  the entry ('<state>|<score>|<source>'; '' with 'clear')
-- ARGV[4]  its score ('0' with 'clear')
-- Returns 1 when the entry changed, else 0.
local mode = ARGV[2]
if mode == 'clear' then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current == ARGV[3] then
  return 0
end
local rank = {suspect = 1, open = 2, fraud = 3}
if mode ~= 'fraud' and current then
  local state, score = string.match(current, '^([^|]*)|([^|]*)|')
  local held, wanted = rank[state] or 0, rank[mode] or 0
  if held > wanted or (held == wanted and tonumber(score or '0') > tonumber(ARGV[4])) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
