-- The five algorithms. Each mirrors algorithms/*.go: instants are µs
-- instead of ns, and the rate C/W is reduced to cr/wr, so fractions of a
-- token are in units of 1/wr and fractions of a µs in units of 1/cr. t never
-- decreases (see clock).
--
-- A spec s keeps its state in v[s.o + 1] to v[s.o + size] of the set's
-- state v (see state.lua); the comment of each algorithm names the numbers.
-- Every algorithm has size, init (the initial numbers), ready, take, refund,
-- avail, debt (the overage that still counts: the buckets' whole units below
-- zero, the others' units counted beyond C, counting at most LIM), lower
-- (take at t what leaves at most
-- remaining available: upstream feedback), untake (give back at t n units
-- taken at p by a grant whose caller had gone, as though they had not been
-- taken, where that can still be done; it returns whether units came
-- back), idle (the instant from which
-- the state equals init again) and, for charge, either span (the pace
-- algorithms: a bound of how much later than max(idle, p) taking n units at
-- p makes idle) or horizon (the window algorithms: the instant from which
-- units taken at p no longer count, so that idle is then at most
-- max(idle, horizon); it runs right after take at p, and may read what take
-- left in v).

local ALG = {}

-- pace_span bounds the time n units take to drain or refill at C/W: n·W/C
-- plus two µs of rounding (a double, not exact: it only bounds; charge
-- saturates the sum). s.pace is W/C, set by parse. grant computes it
-- inline for every algorithm without a horizon: they all use it.
local function pace_span(s, n) return n * s.pace + 2 end

-- sliding_horizon: units taken at p leave a sliding window at p + W.
local function sliding_horizon(s, v, p)
  local h = p + s.W
  if h > NEVER then return NEVER end
  return h
end

-- the duration n·T = n·W/C as whole µs and a remainder in units of 1/cr µs.
local function dur(s, n) return scale(n, 0, s.wr, s.cr) end

-- TokenBucket: tokens, frac, last; level = tokens + frac/wr at last.
-- tb_at brings the bucket to t, refilled (an equivalent state: refilling is
-- exact, the remainder carries over), and returns its tokens and frac.
local function tb_at(s, v, t)
  local o = s.o
  local tokens, frac, last = v[o + 1], v[o + 2], v[o + 3]
  if t <= last then return tokens, frac end
  if tokens < s.C then
    local q, r = scale(t - last, frac, s.cr, s.wr)
    if q >= s.C - tokens then tokens, frac = s.C, 0 else tokens, frac = tokens + q, r end
  end
  v[o + 1], v[o + 2], v[o + 3] = tokens, frac, t
  return tokens, frac
end

local function tb_ready(s, v, t, n)
  local tokens, frac = tb_at(s, v, t)
  if tokens >= n then return t end
  local q, r = scale(n - tokens, 0, s.wr, s.cr)
  if q >= NEVER then return NEVER end
  local rr, adj = r - frac, 0
  if rr > 0 then adj = 1 elseif rr < 0 then adj = -idiv(-rr, s.cr) end
  return min(t + q + adj, NEVER)
end

ALG[0] = {
  size = 3,
  init = function(s) return s.C, 0, 0 end,
  ready = tb_ready,
  take = function(s, v, t, n)
    -- ready has most often brought the bucket to t already
    local tokens = v[s.o + 1]
    if t > v[s.o + 3] then tokens = tb_at(s, v, t) end
    tokens = tokens - n
    if tokens < -LIM then tokens = -LIM end
    v[s.o + 1] = tokens
  end,
  refund = function(s, v, t, n)
    local o, tokens, frac = s.o, tb_at(s, v, t)
    local room = s.C - tokens
    if n < room or (n == room and frac == 0) then
      v[o + 1] = tokens + n
      return n
    end
    if frac > 0 then room = room - 1 end
    v[o + 1], v[o + 2] = s.C, 0
    return room
  end,
  avail = function(s, v, t) return max(tb_at(s, v, t), 0) end,
  debt = function(s, v, t) return max(-tb_at(s, v, t), 0) end,
  -- lower takes ⌊level⌋ − remaining, so that ⌊level⌋ becomes remaining
  -- (at least −LIM, where take stops); the fraction is kept.
  lower = function(s, v, t, remaining)
    local k = tb_at(s, v, t) - max(remaining, -LIM)
    if k > 0 then s:take(v, t, k) end
  end,
  idle = function(s, v, t) return tb_ready(s, v, t, s.C) end,
  span = pace_span,
  -- untake is a refund: a bucket's level does not depend on when its units
  -- were taken
  untake = function(s, v, t, p, n) return s:refund(v, t, n) > 0 end,
}

-- beyond returns what a count of n units holds beyond C, counting at most
-- LIM: the debt of the algorithms that do not refund.
local function beyond(s, n) return max(min(n, LIM) - s.C, 0) end

-- LeakyBucket: next, rem, last; the queue drains at next + rem/cr.
local function lb_head(s, v)
  if v[s.o + 2] > 0 then return v[s.o + 1] + 1 end
  return v[s.o + 1]
end

-- lb_queued returns the units in the queue at t, ⌈(next − t)/T⌉
-- (saturating at LIM): 0 once it has drained.
local function lb_queued(s, v, t)
  local nx, rem = v[s.o + 1], v[s.o + 2]
  if nx < t or (nx == t and rem == 0) then return 0 end
  local q, r = scale(nx - t, rem, s.cr, s.wr)
  if r > 0 then q = q + 1 end
  return q
end

-- lb_avail returns the room left in the queue at t: C − ⌈(next − t)/T⌉.
local function lb_avail(s, v, t) return max(s.C - lb_queued(s, v, t), 0) end

ALG[1] = {
  size = 3,
  init = function() return 0, 0, 0 end,
  ready = function(s, v, t)
    local d = lb_head(s, v)
    if d <= t then return t end
    return d
  end,
  take = function(s, v, t, n)
    local o = s.o
    v[o + 3] = t
    local d = max(t, lb_head(s, v))
    local q, r = dur(s, n)
    if d + q >= NEVER then v[o + 1], v[o + 2] = NEVER, 0 else v[o + 1], v[o + 2] = d + q, r end
  end,
  refund = function() return 0 end,
  avail = lb_avail,
  -- debt: the units queued beyond C, until they drain
  debt = function(s, v, t) return beyond(s, lb_queued(s, v, t)) end,
  -- lower grows the queue by exactly the drain time of the units above
  -- remaining: no request departs, so next is not rounded up first.
  lower = function(s, v, t, remaining)
    -- the level, available less debt, down to remaining (at least −LIM)
    local k = s.C - min(lb_queued(s, v, t), LIM) - max(remaining, -LIM)
    if k <= 0 then return end
    local o = s.o
    v[o + 3] = t
    if v[o + 1] < t then v[o + 1], v[o + 2] = t, 0 end -- drained: the queue restarts at t
    local q, r = dur(s, k)
    local rem, c = addmod(v[o + 2], r, s.cr)
    if v[o + 1] + q + c >= NEVER then v[o + 1], v[o + 2] = NEVER, 0 else v[o + 1], v[o + 2] = v[o + 1] + q + c, rem end
  end,
  idle = lb_head,
  span = pace_span,
  -- untake takes n units' drain time off the queue when they were the last
  -- taken (last is still p): the queue is then as it was before them, but
  -- for the sub-µs remainder take rounded up. A grant waits for the queue
  -- to drain, so when a later one was made they had drained already and
  -- nothing is left to give back. Only units queued behind them by charged
  -- usage or upstream feedback (which do not wait) keep them queued.
  untake = function(s, v, t, p, n)
    local o = s.o
    if v[o + 3] ~= p or v[o + 1] >= NEVER then return false end
    local q, r = dur(s, n)
    local nx, rem = v[o + 1] - q, v[o + 2] - r
    if rem < 0 then nx, rem = nx - 1, rem + s.cr end
    v[o + 1], v[o + 2] = nx, rem
    return true
  end,
}

-- SlidingWindow: sum, last amount, last at, first at; and the list
-- KEYS_[s.li] of entries (at, amount) packed as ENTRY, oldest first, one per
-- distinct instant. An entry counts while t < at + W. The list is empty
-- when sum is 0: every entry is positive.
--
-- An entry's amount is capped at LIM, and entries older than the newest ones
-- that already hold LIM or more are dropped (sw_trim): while those newest
-- entries count, no request fits and the debt, which counts at most LIM
-- units, is LIM − C; the older ones expire first. So neither changes a
-- decision or a debt, and sum stays at most 2·LIM = 2^53 however much
-- overage is charged, so it stays exact.
local ENTRY = '<dd'

-- The lists are read and written through LIST: REDIS_LIST, the keys
-- themselves, on every call but project, which runs the algorithms on a copy
-- (sim_list) and so writes nothing.
local REDIS_LIST = {
  pop = function(k) return redis.call('LPOP', k) end,
  first = function(k) return redis.call('LINDEX', k, 0) end,
  all = function(k) return redis.call('LRANGE', k, 0, -1) end,
  set_last = function(k, e) redis.call('LSET', k, -1, e) end,
  push = function(k, e) redis.call('RPUSH', k, e) end,
}
local LIST = REDIS_LIST

-- sim_list returns list operations on copies of the lists, which read
-- Redis as they go (an entry at a time, so that pruning a long list costs no
-- more than it does on the list itself) and never write it: a copy keeps
-- how many entries it popped, what replaced the last one, and what it
-- pushed.
local function sim_list()
  local copies = {}
  local function get(k)
    local c = copies[k]
    if not c then
      c = {n = redis.call('LLEN', k), popped = 0, last = nil, tail = {}}
      copies[k] = c
    end
    return c
  end
  local function at(c, k, i) -- the i-th entry of the copy, from 0
    if i >= c.n then return c.tail[i - c.n + 1] end
    if i == c.n - 1 and c.last then return c.last end
    return redis.call('LINDEX', k, i)
  end
  return {
    pop = function(k)
      local c = get(k)
      local e = at(c, k, c.popped)
      c.popped = c.popped + 1
      return e
    end,
    first = function(k)
      local c = get(k)
      return at(c, k, c.popped)
    end,
    all = function(k)
      local c, out = get(k), {}
      if c.popped < c.n then out = redis.call('LRANGE', k, c.popped, -1) end
      if c.last and #out > 0 then out[#out] = c.last end
      for _, e in ipairs(c.tail) do out[#out + 1] = e end
      return out
    end,
    set_last = function(k, e)
      local c = get(k)
      if #c.tail > 0 then c.tail[#c.tail] = e else c.last = e end
    end,
    push = function(k, e)
      local c = get(k)
      c.tail[#c.tail + 1] = e
    end,
  }
end

local function sw_prune(s, v, t)
  local o, list = s.o, KEYS_[s.li]
  while v[o + 1] > 0 and t - v[o + 4] >= s.W do
    DIRTY = true
    local _, amt = struct.unpack(ENTRY, LIST.pop(list))
    v[o + 1] = v[o + 1] - amt
    if v[o + 1] > 0 then v[o + 4] = struct.unpack(ENTRY, LIST.first(list)) end
  end
end

-- sw_trim drops the oldest entries, but for the last one, while the others
-- and add units about to be taken at t hold LIM or more. It runs before
-- the units are added, so that no sum passes 2^53 (sum ≤ LIM + the first).
local function sw_trim(s, v, add)
  local o, list = s.o, KEYS_[s.li]
  while v[o + 1] + add > LIM do
    local _, amt = struct.unpack(ENTRY, LIST.first(list))
    if amt == v[o + 1] or v[o + 1] - amt + add < LIM then return end
    LIST.pop(list)
    v[o + 1] = v[o + 1] - amt
    v[o + 4] = struct.unpack(ENTRY, LIST.first(list))
  end
end

local function sw_take(s, v, t, n)
  sw_prune(s, v, t)
  local o, list = s.o, KEYS_[s.li]
  local last = v[o + 2]
  n = min(n, LIM)
  if v[o + 1] > 0 and v[o + 3] == t then
    local add = min(n, LIM - last)
    sw_trim(s, v, add)
    v[o + 1], v[o + 2] = v[o + 1] + add, last + add
    LIST.set_last(list, struct.pack(ENTRY, t, last + add))
    return
  end
  if n <= 0 then return end
  if v[o + 1] == 0 then
    v[o + 4] = t
    fresh(list)
  else
    sw_trim(s, v, n)
  end
  LIST.push(list, struct.pack(ENTRY, t, n))
  v[o + 1], v[o + 2], v[o + 3] = v[o + 1] + n, n, t
end

local function sw_avail(s, v, t)
  sw_prune(s, v, t)
  return max(s.C - v[s.o + 1], 0)
end

-- sw_untake takes n units off the entry at p while it still counts: the
-- entries newer than p, only those granted since, are read from the end of
-- the list; an entry left with nothing goes, so that every entry stays
-- positive. Units trimmed away (sw_trim) are not found: they count no more.
local function sw_untake(s, v, t, p, n)
  sw_prune(s, v, t)
  local o, list = s.o, KEYS_[s.li]
  if v[o + 1] == 0 or p < v[o + 4] then return false end
  local j = -1
  while true do
    local e = redis.call('LINDEX', list, j)
    if not e then return false end
    local at, amt = struct.unpack(ENTRY, e)
    if at < p then return false end
    if at == p then
      local k = min(n, amt)
      v[o + 1] = v[o + 1] - k
      if k < amt then
        redis.call('LSET', list, j, struct.pack(ENTRY, at, amt - k))
        if j == -1 then v[o + 2] = amt - k end
        return true
      end
      redis.call('LREM', list, 1, e) -- entries are one per instant: e is this one
      if v[o + 1] == 0 then -- the list is gone with its last entry
        v[o + 2], v[o + 3], v[o + 4] = 0, 0, 0
        return true
      end
      if j == -1 then v[o + 3], v[o + 2] = struct.unpack(ENTRY, redis.call('LINDEX', list, -1)) end
      if at == v[o + 4] then v[o + 4] = struct.unpack(ENTRY, redis.call('LINDEX', list, 0)) end
      return true
    end
    j = j - 1
  end
end

ALG[2] = {
  size = 4,
  init = function() return 0, 0, 0, 0 end,
  ready = function(s, v, t, n)
    sw_prune(s, v, t)
    local limit, sum = s.C - n, v[s.o + 1]
    if sum <= limit then return t end
    for _, e in ipairs(LIST.all(KEYS_[s.li])) do
      local at, amt = struct.unpack(ENTRY, e)
      sum = sum - amt
      if sum <= limit then return min(at + s.W, NEVER) end
    end
    return NEVER
  end,
  take = sw_take,
  refund = function() return 0 end,
  avail = sw_avail,
  -- debt: the units in (t − W, t] beyond C, until they leave the window
  debt = function(s, v, t)
    sw_prune(s, v, t)
    return beyond(s, v[s.o + 1])
  end,
  lower = function(s, v, t, remaining)
    sw_prune(s, v, t)
    local k = s.C - min(v[s.o + 1], LIM) - max(remaining, -LIM)
    if k > 0 then sw_take(s, v, t, k) end
  end,
  idle = function(s, v, t)
    if v[s.o + 1] == 0 then return t end
    return min(v[s.o + 3] + s.W, NEVER)
  end,
  horizon = sliding_horizon,
  untake = sw_untake,
}

-- FixedWindow: index, count; windows are aligned to the Unix epoch.
-- fw_end returns the end of window i, saturating at NEVER.
local function fw_end(s, i)
  local e = (i + 1) * s.W
  if e > NEVER then return NEVER end
  return e
end

-- fw_count returns the index of t's window, ⌊t/W⌋ (idiv inline, see
-- FLOOR: every call of a FixedWindow limit runs it), and its count.
local function fw_count(s, v, t)
  local w = s.W
  local i = t / w
  i = i - i % 1
  if i * w > t then i = i - 1 end
  if i ~= v[s.o + 1] then return i, 0 end
  return i, v[s.o + 2]
end

local function fw_take(s, v, t, n)
  local i, c = fw_count(s, v, t)
  c = c + n
  if c > LIM then c = LIM end
  v[s.o + 1], v[s.o + 2] = i, c
end

local function fw_avail(s, v, t)
  local _, c = fw_count(s, v, t)
  return max(s.C - c, 0)
end

ALG[3] = {
  size = 2,
  init = function() return -1, 0 end,
  ready = function(s, v, t, n)
    local i, c = fw_count(s, v, t)
    if c <= s.C - n then return t end
    return fw_end(s, i)
  end,
  take = fw_take,
  refund = function() return 0 end,
  avail = fw_avail,
  -- debt: the units counted beyond C in t's window, none once it ends
  debt = function(s, v, t)
    local _, c = fw_count(s, v, t)
    return beyond(s, c)
  end,
  lower = function(s, v, t, remaining)
    local _, c = fw_count(s, v, t)
    local k = s.C - min(c, LIM) - max(remaining, -LIM)
    if k > 0 then fw_take(s, v, t, k) end
  end,
  idle = function(s, v, t)
    local i, c = fw_count(s, v, t)
    if c == 0 then return t end
    return fw_end(s, i)
  end,
  -- units taken at p count until the end of p's window, the one take
  -- just counted them in
  horizon = function(s, v) return fw_end(s, v[s.o + 1]) end,
  -- untake: units taken at p come off the count while p's window is the
  -- one counted (they count no more once a later one began)
  untake = function(s, v, t, p, n)
    local i, c = fw_count(s, v, p)
    if i ~= v[s.o + 1] or c == 0 then return false end
    c = c - n
    if c < 0 then c = 0 end
    v[s.o + 2] = c
    return true
  end,
}

-- GCRA admits exactly what TokenBucket admits, refunds and the debt bound
-- included (algorithms/gcra.go: its backlog (TAT − t)·C is a token bucket's
-- deficit times W), so the script keeps it as a token bucket. An arrival time
-- in µs would saturate at NEVER (the year 2112) long before the debt reaches
-- LIM units on a slow limit, and a refund could not move it back.
ALG[4] = ALG[0]
