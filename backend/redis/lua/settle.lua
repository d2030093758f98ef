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
-- A grant that took no resource has no lease: its member has the id 0, and
-- its settle only applies the deltas (the client never resends it, since
-- nothing would tell a resent one apart).
--
-- Returns {1, refunded per spec...} for a live lease (or none), {2,
-- refunded per spec...} for a lost one, and {0} when the lease is unknown:
-- settled before, or lost so long ago that its record is gone (nothing is
-- applied).
local function settle(keys, args)
  local sp = begin(keys, args)
  local v = load(sp)
  local m = args[2]
  local leased = member_id(m) ~= '0'
  if leased and not KE then no_lease() end
  if not v or (leased and v[XP] == 0) then return {0} end -- another set's, or none: no lease lives
  local rt, t = clock(args[3 + sp.n], v[CLOCK])
  FREED = reap(sp, v, t)
  local code, granted = 1, member_amounts(m)
  if leased then code = end_lease(sp, v, t, m, granted) end
  if not code then
    if DIRTY then commit(sp, v, t, rt) end
    notify(FREED)
    if redis.call('ZSCORE', KL, '~' .. member_id(m)) then return {2} end -- a retry: applied before
    return {0}
  end
  local out = {code}
  for i = 1, sp.n do
    local s, d, got = sp[i], tonumber(args[2 + i]), 0
    if s.alg ~= RESOURCE and d ~= 0 then TE = t end
    if s.alg ~= RESOURCE and d > 0 then
      s:take(v, t, d)
      charge_one(v, t, s, d)
    elseif s.alg ~= RESOURCE and d < 0 then
      got = s:refund(v, t, min(-d, granted[i]))
      if got > 0 then FREED = true end
    end
    out[i + 1] = got
  end
  commit(sp, v, t, rt)
  notify(FREED)
  return out
end
