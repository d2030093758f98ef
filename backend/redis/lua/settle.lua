-- settle: ARGV[2] the lease's member ("id amount..."), then n deltas (usage
-- beyond the grant: positive is charged, negative refunded where the
-- algorithm refunds, at most what was granted), then the test clock if any.
-- Ends the lease and returns its resources.
--
-- Usage is not the lease's: the deltas of a lease that expired before its
-- settle (lost: its resources went back when it expired, maybe to another
-- holder) are applied all the same, as long as its record is kept (see
-- reap). A lost lease's settle leaves a tombstone in its place, so that a
-- retried settle is not charged twice.
--
-- Returns {1, refunded per spec...} for a live lease, {2, refunded per
-- spec...} for a lost one, and {0} when the lease is unknown: settled
-- before, or lost so long ago that its record is gone (nothing is applied).
local function settle(keys, args)
  local sp = begin(keys, args)
  local v = load(sp)
  if not v or v[XP] == 0 then return {0} end -- another set's, or none: no lease lives
  local rt, t = clock(args[3 + sp.n], v[CLOCK])
  local freed = reap(sp, v, t)
  local m = args[2]
  local code, granted = 1, member_amounts(m)
  local exp = redis.call('ZSCORE', KE, m)
  if exp then
    redis.call('ZREM', KE, m)
    if tonumber(exp) <= t then -- expired, not reaped yet: lost all the same
      code = 2
      redis.call('ZADD', KL, t + KEEP_LOST, '~' .. member_id(m))
      v[LX] = math.max(v[LX], t + KEEP_LOST)
    end
    for i = 1, sp.n do
      local s = sp[i]
      if s.alg == RESOURCE and granted[i] > 0 then
        v[s.o + 1] = v[s.o + 1] - granted[i]
        freed = true
      end
    end
  else
    local keep, tomb = redis.call('ZSCORE', KL, m), '~' .. member_id(m)
    if keep then
      redis.call('ZREM', KL, m)
      redis.call('ZADD', KL, keep, tomb)
      code = 2
    else
      if DIRTY then commit(sp, v, t, rt) end
      notify(freed)
      if redis.call('ZSCORE', KL, tomb) then return {2} end -- a retry: applied before
      return {0}
    end
  end
  local out = {code}
  for i = 1, sp.n do
    local s, d, got = sp[i], tonumber(args[2 + i]), 0
    if s.alg ~= RESOURCE and d ~= 0 then TE = t end
    if s.alg ~= RESOURCE and d > 0 then
      s:take(v, t, d)
    elseif s.alg ~= RESOURCE and d < 0 then
      got = s:refund(v, t, math.min(-d, granted[i]))
      if got > 0 then freed = true end
    end
    out[i + 1] = got
  end
  commit(sp, v, t, rt)
  notify(freed)
  return out
end
