-- referrer_risk: set or clear one referrer's risk entry, which the click path reads (click.lua).
-- KEYS[1]  the campaign's referrer-risk hash (numeric referrer id -> '<state>|<score>|<source>')
-- ARGV[1]  numeric referrer id
-- ARGV[2]  'open': a finding under review; written unless a reviewer decided the referrer
--          fraudulent or the entry holds a higher score already
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
if mode == 'open' and current then
  local state, score = string.match(current, '^([^|]*)|([^|]*)|')
  if state == 'fraud' then
    return 0
  end
  if tonumber(score or '0') > tonumber(ARGV[4]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
