-- The five algorithms over a state {a, b, c} kept as "a b c" in field s<i>.
-- Each mirrors algorithms/*.go: instants are µs instead of ns, and the rate
-- C/W is reduced to cr/wr, so fractions of a token are in units of 1/wr and
-- fractions of a µs in units of 1/cr. t never decreases (see now).
-- Every algorithm has init, ready, take, refund, avail and idle (the instant
-- from which the state equals init again).

local ALG = {}

-- the duration n·T = n·W/C as whole µs and a remainder in units of 1/cr µs.
local function dur(sp, n) return scale(n, 0, sp.wr, sp.cr) end

-- TokenBucket: {tokens, frac, last}; level = tokens + frac/wr at last.
local function tb_at(sp, st, t)
  local tokens, frac, last = st[1], st[2], st[3]
  if tokens >= sp.C or t <= last then return tokens, frac end
  local q, r = scale(t - last, frac, sp.cr, sp.wr)
  if q >= sp.C - tokens then return sp.C, 0 end
  return tokens + q, r
end

local function tb_ready(sp, st, t, n)
  local tokens, frac = tb_at(sp, st, t)
  if tokens >= n then return t end
  local q, r = scale(n - tokens, 0, sp.wr, sp.cr)
  if q >= NEVER then return NEVER end
  local rr, adj = r - frac, 0
  if rr > 0 then adj = 1 elseif rr < 0 then adj = -idiv(-rr, sp.cr) end
  return math.min(t + q + adj, NEVER)
end

ALG[0] = {
  init = function(sp) return {sp.C, 0, 0} end,
  ready = tb_ready,
  take = function(sp, st, t, n)
    st[1], st[2] = tb_at(sp, st, t)
    st[3] = t
    st[1] = math.max(st[1] - n, -LIM)
  end,
  refund = function(sp, st, t, n)
    st[1], st[2] = tb_at(sp, st, t)
    st[3] = t
    local room = sp.C - st[1]
    if n < room or (n == room and st[2] == 0) then
      st[1] = st[1] + n
      return n
    end
    if st[2] > 0 then room = room - 1 end
    st[1], st[2] = sp.C, 0
    return room
  end,
  avail = function(sp, st, t) return math.max(tb_at(sp, st, t), 0) end,
  idle = function(sp, st, t) return tb_ready(sp, st, t, sp.C) end,
}

-- LeakyBucket: {next, rem, last}; the queue drains at next + rem/cr.
local function lb_head(st)
  if st[2] > 0 then return st[1] + 1 end
  return st[1]
end

ALG[1] = {
  init = function() return {0, 0, 0} end,
  ready = function(sp, st, t, n)
    local d = lb_head(st)
    if d <= t then return t end
    return d
  end,
  take = function(sp, st, t, n)
    st[3] = t
    local d = math.max(t, lb_head(st))
    local q, r = dur(sp, n)
    if d + q >= NEVER then st[1], st[2] = NEVER, 0 else st[1], st[2] = d + q, r end
  end,
  refund = function() return 0 end,
  avail = function(sp, st, t)
    if st[1] < t or (st[1] == t and st[2] == 0) then return sp.C end
    local q, r = scale(st[1] - t, st[2], sp.cr, sp.wr)
    if r > 0 then q = q + 1 end
    if q >= sp.C then return 0 end
    return sp.C - q
  end,
  idle = function(sp, st, t) return lb_head(st) end,
}

-- SlidingWindow: {sum, 0, 0} and the list of "at amount" entries, oldest
-- first, one per distinct instant; an entry counts while t < at + W.
local function sw_prune(sp, st, t)
  while true do
    local e = redis.call('LINDEX', sp.list, 0)
    if not e then return end
    local at, amt = string.match(e, '^(%S+) (%S+)$')
    if t - tonumber(at) < sp.W then return end
    redis.call('LPOP', sp.list)
    st[1] = st[1] - tonumber(amt)
  end
end

ALG[2] = {
  init = function() return {0, 0, 0} end,
  ready = function(sp, st, t, n)
    sw_prune(sp, st, t)
    local limit, sum = sp.C - n, st[1]
    if sum <= limit then return t end
    for _, e in ipairs(redis.call('LRANGE', sp.list, 0, -1)) do
      local at, amt = string.match(e, '^(%S+) (%S+)$')
      sum = sum - tonumber(amt)
      if sum <= limit then return math.min(tonumber(at) + sp.W, NEVER) end
    end
    return NEVER
  end,
  take = function(sp, st, t, n)
    sw_prune(sp, st, t)
    n = math.min(n, sp.C)
    local e = redis.call('LINDEX', sp.list, -1)
    if e then
      local at, amt = string.match(e, '^(%S+) (%S+)$')
      if tonumber(at) == t then
        local old = tonumber(amt)
        local add = math.min(n, sp.C - old)
        redis.call('LSET', sp.list, -1, fmt(t) .. ' ' .. fmt(old + add))
        st[1] = st[1] + add
        return
      end
    end
    redis.call('RPUSH', sp.list, fmt(t) .. ' ' .. fmt(n))
    st[1] = st[1] + n
  end,
  refund = function() return 0 end,
  avail = function(sp, st, t)
    sw_prune(sp, st, t)
    return math.max(sp.C - st[1], 0)
  end,
  idle = function(sp, st, t)
    local e = redis.call('LINDEX', sp.list, -1)
    if not e then return t end
    return math.min(tonumber(string.match(e, '^(%S+)')) + sp.W, NEVER)
  end,
}

-- FixedWindow: {index, count, 0}; windows are aligned to the Unix epoch.
local function fw_count(sp, st, t)
  local i = idiv(t, sp.W)
  if i ~= st[1] then return i, 0 end
  return i, st[2]
end

ALG[3] = {
  init = function() return {-1, 0, 0} end,
  ready = function(sp, st, t, n)
    local i, c = fw_count(sp, st, t)
    if c <= sp.C - n then return t end
    return math.min((i + 1) * sp.W, NEVER)
  end,
  take = function(sp, st, t, n)
    local i, c = fw_count(sp, st, t)
    st[1], st[2] = i, math.min(c + n, LIM)
  end,
  refund = function() return 0 end,
  avail = function(sp, st, t)
    local _, c = fw_count(sp, st, t)
    return math.max(sp.C - c, 0)
  end,
  idle = function(sp, st, t)
    local i, c = fw_count(sp, st, t)
    if c == 0 then return t end
    return math.min((i + 1) * sp.W, NEVER)
  end,
}

-- GCRA: {tat, rem, last}; TAT = tat + rem/cr, T = W/C, tolerance W.
local function g_late(st, t) return st[1] > t or (st[1] == t and st[2] > 0) end

ALG[4] = {
  init = function() return {0, 0, 0} end,
  ready = function(sp, st, t, n)
    if not g_late(st, t) then return t end
    if st[1] >= NEVER then return NEVER end
    local sq, sr = dur(sp, sp.C - n)
    local span = st[1] - t
    if span < sq or (span == sq and st[2] <= sr) then return t end
    if st[2] > sr then return st[1] - sq + 1 end
    return st[1] - sq
  end,
  take = function(sp, st, t, n)
    st[3] = t
    if not g_late(st, t) then st[1], st[2] = t, 0 end
    if st[1] >= NEVER then return end
    local q, r = dur(sp, n)
    local rem, c = addmod(st[2], r, sp.cr)
    if st[1] + q + c >= NEVER then st[1], st[2] = NEVER, 0 else st[1], st[2] = st[1] + q + c, rem end
  end,
  refund = function(sp, st, t, n)
    st[3] = t
    if not g_late(st, t) then return 0 end
    if st[1] >= NEVER then return n end
    local q, r = dur(sp, n)
    local span = st[1] - t
    if q > span or (q == span and r >= st[2]) then
      local given = scale(span, st[2], sp.cr, sp.wr)
      st[1], st[2] = t, 0
      return given
    end
    if st[2] < r then
      st[2], q = st[2] + sp.cr - r, q + 1
    else
      st[2] = st[2] - r
    end
    st[1] = st[1] - q
    return n
  end,
  avail = function(sp, st, t)
    if not g_late(st, t) then return sp.C end
    local q, r = scale(st[1] - t, st[2], sp.cr, sp.wr)
    if r > 0 then q = q + 1 end
    if q >= sp.C then return 0 end
    return sp.C - q
  end,
  idle = function(sp, st, t)
    if st[2] > 0 then return math.min(st[1] + 1, NEVER) end
    return st[1]
  end,
}
