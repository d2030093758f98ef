-- Loading, saving and expiring a set's state; reaping expired leases.

local RESOURCE = 9

-- load decodes the states head read (raw[2 + i] is spec i's).
local function load(sp, raw)
  local st = {}
  for i = 1, N do
    local r = raw[2 + i]
    if r then
      st[i] = split(r)
    elseif sp[i].alg == RESOURCE then
      st[i] = {0, 0, 0}
    else
      st[i] = ALG[sp[i].alg].init(sp[i])
    end
  end
  return st
end

-- reap ends up to 64 leases whose expiry is at or before t, returning their
-- resource units. It reports whether it freed any.
local function reap(sp, st, t)
  local freed = false
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KE, '-inf', fmt(t), 'LIMIT', 0, 64)) do
    local rec = redis.call('HGET', KL, id)
    if rec then
      local held = split(rec)
      for i = 1, N do
        if sp[i].alg == RESOURCE and held[i] > 0 then
          st[i][1] = st[i][1] - held[i]
          freed = true
        end
      end
      redis.call('HDEL', KL, id)
    end
    redis.call('ZREM', KE, id)
  end
  return freed
end

-- save writes the state and the clock, and expires the keys a second after
-- the set would be back at its initial state and every lease has expired
-- (leases live at most the lease TTL past now).
local function save(sp, st, t)
  local args, idle = {'clock', fmt(t)}, t + LEASE_TTL
  for i = 1, N do
    args[#args + 1] = 's' .. i
    args[#args + 1] = string.format('%.0f %.0f %.0f', st[i][1], st[i][2], st[i][3])
    if sp[i].alg ~= RESOURCE then idle = math.max(idle, ALG[sp[i].alg].idle(sp[i], st[i], t)) end
  end
  redis.call('HSET', KM, unpack(args))
  local ms = math.min(math.ceil((idle - t) / 1000), 400 * 86400000) + 1000
  redis.call('PEXPIRE', KM, ms)
  redis.call('PEXPIRE', KL, ms)
  redis.call('PEXPIRE', KE, ms)
  for i = 1, N do
    if sp[i].alg == 2 then redis.call('PEXPIRE', sp[i].list, ms) end
  end
end

local function notify(freed)
  if freed then redis.call('PUBLISH', CHANNEL, '1') end
end
