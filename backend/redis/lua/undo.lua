-- undo: ARGV[2] the grant's member ("id amount..."; "0 amount..." for a
-- grant that took no resource, which has no lease), ARGV[3] p, the instant
-- the grant was made as of (µs), then the test clock if any. Gives back a
-- grant whose caller had gone before it came: its lease ends and its
-- resources return, and each rate limit's units are taken back as though
-- they had not been taken where its untake can (see algorithms.lua):
-- TokenBucket and GCRA always, FixedWindow while p's window is counted,
-- SlidingWindow while the units count, LeakyBucket unless charged usage or
-- upstream feedback queued units behind them.
--
-- A lease that is unknown (given back before: this call resent) applies
-- nothing. A grant without a lease has nothing that would tell a resent
-- call apart, so the client never resends one.
--
-- Returns 1, or 0 when nothing was applied.
local function undo(keys, args)
  local sp = begin(keys, args)
  local v = load(sp)
  local m = args[2]
  local leased = member_id(m) ~= '0'
  if leased and not KE then no_lease() end
  if not v or (leased and v[XP] == 0) then return 0 end -- another set's, or none: nothing to give back
  local p = tonumber(args[3])
  local rt, t = clock(args[4], v[CLOCK])
  FREED = reap(sp, v, t)
  local granted = member_amounts(m)
  if leased and not end_lease(sp, v, t, m, granted) then
    if DIRTY then commit(sp, v, t, rt) end
    notify(FREED)
    return 0
  end
  for i = 1, sp.n do
    local s, n = sp[i], granted[i] or 0
    if s.alg ~= RESOURCE and n > 0 then
      TE = t
      if s:untake(v, t, p, n) then FREED = true end
    end
  end
  commit(sp, v, t, rt)
  notify(FREED)
  return 1
end
