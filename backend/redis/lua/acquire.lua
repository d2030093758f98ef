-- acquire: ARG0 mode ("t" take, "c" check), ARG0+1 lease id, then n amounts.
-- Returns {1, t} granted (or granted before: a retry), {2, t} could grant
-- now (check mode, nothing taken), {0, t, ready, blocked, wake} refused:
-- ready is when the rate limits could grant, blocked is 1 when resources are
-- short, wake is the earliest lease expiry then (0 if none); {-1, def}
-- when the stored definition differs.
local mode, id = ARGV[ARG0], ARGV[ARG0 + 1]
local stored, t, raw = head()
if stored then return {-1, stored} end
if redis.call('HEXISTS', KL, id) == 1 then return {1, t} end
local sp = specs()
local st = load(sp, raw)
local freed = reap(sp, st, t)
local amounts, ready, blocked = {}, t, false
for i = 1, N do
  local n = tonumber(ARGV[ARG0 + 1 + i])
  amounts[i] = n
  if n > 0 then
    if sp[i].alg == RESOURCE then
      if st[i][1] + n > sp[i].C then blocked = true end
    else
      ready = math.max(ready, ALG[sp[i].alg].ready(sp[i], st[i], t, n))
    end
  end
end
if ready > t or blocked or mode == 'c' then
  save(sp, st, t)
  notify(freed)
  if ready == t and not blocked then return {2, t} end
  local wake = 0
  if blocked then
    local first = redis.call('ZRANGE', KE, 0, 0, 'WITHSCORES')
    if first[2] then wake = tonumber(first[2]) end
  end
  return {0, t, ready, blocked and 1 or 0, wake}
end
for i = 1, N do
  local n = amounts[i]
  if n > 0 then
    if sp[i].alg == RESOURCE then st[i][1] = st[i][1] + n else ALG[sp[i].alg].take(sp[i], st[i], t, n) end
  end
end
redis.call('HSET', KL, id, string.format(string.rep('%.0f ', N), unpack(amounts)))
redis.call('ZADD', KE, fmt(t + LEASE_TTL), id)
save(sp, st, t)
notify(freed)
return {1, t}
