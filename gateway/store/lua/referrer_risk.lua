-- referrer_risk: set or clear one referrer's risk entry, which the click path reads (click.lua).
-- KEYS[1]  the campaign's referrer-risk hash (numeric referrer id -> '<state>|<score>|<source>')
-- ARGV[1]  numeric referrer id
-- ARGV[2]  'open': a finding under review; 'suspect': a suspicion no flag was raised for
--          (e.g. the link is posted on public pages); written over a weaker entry only: a lower
--          state (suspect < open < fraud), or the same state from a source not about the
--          sharer's conduct when the new one is, or else a score no higher
--          'fraud': a reviewer's decision; always written
--          'clear': a reviewer decided the referrer legit; the entry goes
-- ARGV[3]  the entry ('<state>|<score>|<source>'; '' with 'clear')
-- ARGV[4]  its score ('0' with 'clear')
-- ARGV[5]  the sources of findings about the sharer's own conduct, joined by ','
-- Returns 1 when the entry changed, else 0.
local mode = ARGV[2]
if mode == 'clear' then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current == ARGV[3] then
  return 0
end
if mode ~= 'fraud' and current then
  local rank = {suspect = 1, open = 2, fraud = 3}
  local conduct = {}
  for name in string.gmatch(ARGV[5], '[^,]+') do
    conduct[name] = true
  end
  local function weight(state, source)
    return (rank[state] or 0) * 2 + (conduct[source] and 1 or 0)
  end
  local state, score, source = string.match(current, '^([^|]*)|([^|]*)|(.*)$')
  local new_source = string.match(ARGV[3], '^[^|]*|[^|]*|(.*)$')
  local held, wanted = weight(state, source), weight(mode, new_source)
  if held > wanted or (held == wanted and tonumber(score or '0') > tonumber(ARGV[4])) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
