-- renew: ARGV[2] the test clock ("" for Redis TIME), then lease members.
-- Moves the expiry of every lease that has not expired yet to now + the
-- lease TTL; an expired lease is never renewed. Returns the members that
-- could not be renewed: their leases are lost (or were settled meanwhile).
local function renew(keys, args)
  local sp = begin(keys, args)
  local v = load(sp)
  local lost = {}
  if args[3] and not KE then no_lease() end
  if not v or v[XP] == 0 then -- another set's, or none: no lease lives
    for i = 3, #args do lost[#lost + 1] = args[i] end
    return lost
  end
  local over = args[2]
  if over == '' then over = nil end
  local rt, t = clock(over, v[CLOCK])
  local e = t + sp.ttl
  local es = string.format('%d', e)
  for i = 3, #args do
    local m = args[i]
    local exp = redis.call('ZSCORE', KE, m)
    if exp and tonumber(exp) > t then
      redis.call('ZADD', KE, 'XX', es, m)
    else
      lost[#lost + 1] = m
    end
  end
  if v[XP] - rt < lifetime(sp, v, t, v[IB]) * 1000 then commit(sp, v, t, rt) end
  return lost
end
