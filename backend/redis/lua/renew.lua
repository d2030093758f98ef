-- renew: ARG0.. lease ids. Moves the expiry of every lease that has not
-- expired yet to now + the lease TTL; an expired lease is never renewed.
-- Returns the ids that could not be renewed.
local t = now()
local lost = {}
for i = ARG0, #ARGV do
  local id = ARGV[i]
  local exp = redis.call('ZSCORE', KE, id)
  if exp and tonumber(exp) > t then
    redis.call('ZADD', KE, 'XX', fmt(t + LEASE_TTL), id)
  else
    lost[#lost + 1] = id
  end
end
local ms = math.ceil(LEASE_TTL / 1000) + 1000
for i = 1, #KEYS do
  if redis.call('PTTL', KEYS[i]) ~= -2 and redis.call('PTTL', KEYS[i]) < ms then
    redis.call('PEXPIRE', KEYS[i], ms)
  end
end
return lost
