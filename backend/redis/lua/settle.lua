-- settle: ARGV[2] the lease's member ("id amount..."), then n deltas (usage
-- beyond the grant: positive is charged, negative refunded where the
-- algorithm refunds, at most what was granted), then the test clock if any.
-- Ends the lease and returns its resources. Returns {1, refunded per
-- spec...}, or {0} when the lease is gone: settled before, or expired.
local function settle(keys, args)
  local sp = begin(keys, args)
  local v = load(sp)
  if not v or v[XP] == 0 then return {0} end -- another set's, or none: no lease lives
  local rt, t = clock(args[3 + sp.n], v[CLOCK])
  local freed = reap(sp, v, t)
  if redis.call('ZREM', KE, args[2]) == 0 then -- settled before, or expired
    if DIRTY then commit(sp, v, t, rt) end
    notify(freed)
    return {0}
  end
  local granted = member_amounts(args[2])
  local out = {1}
  for i = 1, sp.n do
    local s, d, got = sp[i], tonumber(args[2 + i]), 0
    if s.alg == RESOURCE then
      if granted[i] > 0 then
        v[s.o + 1] = v[s.o + 1] - granted[i]
        freed = true
      end
    elseif d > 0 then
      s:take(v, t, d)
    elseif d < 0 then
      got = s:refund(v, t, math.min(-d, granted[i]))
      if got > 0 then freed = true end
    end
    out[i + 1] = got
  end
  commit(sp, v, t, rt)
  notify(freed)
  return out
end
