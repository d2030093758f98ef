-- acquire and check: ARGV[2] to ARGV[n + 1] the n amounts, then the
-- lease's member ("id amount..."; "" or absent for a request that takes no
-- resource, which gets no lease; present when a hint follows), then the
-- hint (0 or absent for none, -1 for none from a waiter; present when a
-- test clock follows), then the test clock if any. (Every argument costs
-- Redis about as much as twenty Lua operations: the common request that
-- takes no resource and does not wait sends only the parameters and its
-- amounts.)
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
-- A request that takes resources is recorded as a lease (see settle and
-- renew); one that takes only rate limits leaves no record: its units are
-- taken, and its settle (if any) only applies usage.
--
-- acquire returns {1, p, t} when granted as of p (or granted before: a
-- retry, which reports t as p), or just p when the hint is 0 (p is then t:
-- a request that does not wait needs no more; p also says when to date an
-- undo, see undo.lua); check takes nothing and returns {2, p, t} when
-- it could grant as of p. Both return {0, t, ready, blocked, wake, slow,
-- short} when refused: ready is when the rate limits and pauses could
-- grant, slow the spec (from 1) whose instant that is (0 when none is
-- later than the evaluation), blocked is 1 when resources are short and
-- short the first resource spec without room (0 if none), wake is the
-- earliest lease expiry then (0 if none); and {-1, def} when the stored
-- definition differs.

-- refuse answers a request that takes nothing now, saving what reaping and
-- pruning changed.
local function refuse(sp, v, t, rt, take, m, freed, ready, slow, short, hint)
  local before = take and m ~= '' and redis.call('ZSCORE', KE, m)
  if DIRTY then commit(sp, v, t, rt) end
  notify(freed)
  if before then return hint == 0 and t or {1, t, t} end
  if ready <= t and short == 0 then return {2, ready, t} end
  local wake = 0
  if short > 0 then
    local first = redis.call('ZRANGE', KE, 0, 0, 'WITHSCORES')
    if first[2] and tonumber(first[2]) < NEVER then wake = tonumber(first[2]) end
  end
  return {0, t, ready, short > 0 and 1 or 0, wake, slow, short}
end

-- grant takes amounts, the rate limits as of p, and moves the reap hint to
-- e when a lease expiring then was recorded.
local function grant(sp, v, amounts, p, e)
  local d, h = -1, nil
  for i = 1, sp.n do
    local n, s = amounts[i], sp[i]
    if n > 0 then
      if s.alg == RESOURCE then
        v[s.o + 1] = v[s.o + 1] + n
      else
        s:take(v, p, n)
        if s.horizon then
          local x = s:horizon(v, p)
          if not h or x > h then h = x end
        else
          local x = n * s.pace + 2 -- pace_span, inline (see FLOOR)
          if x > d then d = x end
        end
      end
    end
  end
  if d >= 0 or h then charge(v, p, d, h) end
  if e and e < v[RH] then v[RH] = e end
end

-- AMOUNTS holds the request's amounts during an attempt: one table for
-- every call (Redis runs one at a time), not one per call.
local AMOUNTS = {}

local function attempt(keys, args, take)
  local sp = begin(keys, args)
  local v, stored = load(sp)
  if not v then return {-1, stored} end
  local rt, t = clock(args[4 + sp.n], v[CLOCK])
  local freed, m = t >= v[RH] and reap(sp, v, t), args[2 + sp.n] or ''
  if m ~= '' and not KE then no_lease() end
  local hint = args[3 + sp.n]
  if hint == nil or hint == '0' then hint = 0 else hint = tonumber(hint) or 0 end
  local at = t
  if hint > 0 then at = min(max(hint, v[CLOCK]), t) end
  TE = at
  local amounts, ready, slow, short = AMOUNTS, at, 0, 0
  for i = 1, sp.n do
    local n, s = args[1 + i], sp[i]
    -- most amounts are 0 or 1: a string compare costs less than converting
    -- (see COERCE)
    if n == '1' then n = 1 elseif n == '0' then n = 0 else n = n + 0 end
    amounts[i] = n
    if n > 0 then
      if s.alg ~= RESOURCE then
        local r = s:ready(v, at, n)
        if r > ready then ready, slow = r, i end
      elseif short == 0 and n > s.C - v[s.o + 1] then
        short = i
      end
    end
  end
  if v[PX] > ready then ready, slow = paused(sp, v, amounts, ready, slow) end
  if ready > t or short > 0 or not take then
    return refuse(sp, v, t, rt, take, m, freed, ready, slow, short, hint)
  end
  local e, new = nil, true
  if m ~= '' then
    e = t + sp.ttl
    new = redis.call('ZADD', KE, 'NX', string.format('%d', e), m) == 1 -- else granted before
  end
  if new then
    TE = ready
    grant(sp, v, amounts, ready, e)
  end
  if new or DIRTY then commit(sp, v, t, rt) end
  if freed then notify(true) end
  if hint == 0 then return ready end
  if not new then return {1, t, t} end
  return {1, ready, t}
end

local function acquire(keys, args) return attempt(keys, args, true) end

local function check(keys, args) return attempt(keys, args, false) end
