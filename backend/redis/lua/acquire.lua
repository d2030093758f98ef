-- acquire and check: ARGV[2] the lease's member ("id amount..."), then n
-- amounts, then the hint (0 for none, -1 for none from a waiter), then the
-- test clock if any.
--
-- Without a hint the request is evaluated at the call's instant t. With one
-- (an instant the request has been waiting since: the ready instant of an
-- earlier refusal, or the grant of the waiter ahead of it) the rate limits
-- are evaluated from max(hint, the set's clock) on, and a request that became
-- possible at some p in between is granted as of p, not t: the time a waiter
-- takes to wake up and reach Redis is not lost from the schedule. Every
-- grant is still one the algorithms would make at p: p is never before the
-- instant any earlier call evaluated the rate limits at.
--
-- acquire returns {1, p, t} when granted as of p (or granted before: a
-- retry), or just 1 when the hint is 0 (p is then t: a request that does
-- not wait needs no more); check takes nothing and returns {2, p, t} when
-- it could grant as of p. Both
-- return {0, t, ready, blocked, wake} when refused: ready is when the rate
-- limits could grant, blocked is 1 when resources are short, wake is the
-- earliest lease expiry then (0 if none); and {-1, def} when the stored
-- definition differs.

-- refuse answers a request that takes nothing now, saving what reaping and
-- pruning changed.
local function refuse(sp, v, t, rt, take, m, freed, ready, blocked, hint)
  local before = take and redis.call('ZSCORE', KE, m)
  if DIRTY then commit(sp, v, t, rt) end
  notify(freed)
  if before then return hint == 0 and 1 or {1, t, t} end
  if ready <= t and not blocked then return {2, ready, t} end
  local wake = 0
  if blocked then
    local first = redis.call('ZRANGE', KE, 0, 0, 'WITHSCORES')
    if first[2] and tonumber(first[2]) < NEVER then wake = tonumber(first[2]) end
  end
  return {0, t, ready, blocked and 1 or 0, wake}
end

-- grant takes amounts, the rate limits as of p, and records a lease
-- expiring at e.
local function grant(sp, v, amounts, p, e)
  for i = 1, sp.n do
    local n, s = amounts[i], sp[i]
    if n > 0 then
      if s.alg == RESOURCE then v[s.o + 1] = v[s.o + 1] + n else s:take(v, p, n) end
    end
  end
  v[RH] = math.min(v[RH], e)
end

local function attempt(keys, args, take)
  local sp = begin(keys, args)
  local v, stored = load(sp)
  if not v then return {-1, stored} end
  local rt, t = clock(args[4 + sp.n], v[CLOCK])
  local freed, m = reap(sp, v, t), args[2]
  local hint = tonumber(args[3 + sp.n]) or 0
  local at = t
  if hint > 0 then at = math.min(math.max(hint, v[CLOCK]), t) end
  TE = at
  local amounts, ready, blocked = {}, at, false
  for i = 1, sp.n do
    local n, s = tonumber(args[2 + i]), sp[i]
    amounts[i] = n
    if n > 0 then
      if s.alg == RESOURCE then
        if n > s.C - v[s.o + 1] then blocked = true end
      else
        ready = math.max(ready, s:ready(v, at, n))
      end
    end
  end
  if ready > t or blocked or not take then
    return refuse(sp, v, t, rt, take, m, freed, ready, blocked, hint)
  end
  local e = t + sp.ttl
  local new = redis.call('ZADD', KE, 'NX', e, m) == 1 -- else granted before
  if new then
    TE = ready
    grant(sp, v, amounts, ready, e)
  end
  if new or DIRTY then commit(sp, v, t, rt) end
  notify(freed)
  if hint == 0 then return 1 end
  if not new then return {1, t, t} end
  return {1, ready, t}
end

local function acquire(keys, args) return attempt(keys, args, true) end

local function check(keys, args) return attempt(keys, args, false) end
