-- Feedback from the upstream the limits stand for, shared by every process
-- of the set. The feedback hash (KF) holds, per spec i from 1, "p<i>": the
-- instant its pause ends (µs), and "a<i>": the asOf (µs) of the newest
-- upstream report Lower applied to it; a narrow set keeps both in its
-- state (see state.lua). The state's PX is the latest pause end, so that a
-- call outside every pause reads nothing more than the state. Both entries
-- publish a notice, so that waiters in every process look again: a pause or
-- a lowered limit may make their deadline unmeetable.

-- pause: ARGV[2] the spec (from 1; 0 for every spec), ARGV[3] until (µs),
-- then the test clock if any. Nothing is granted from the spec before
-- until; a pause never shortens a longer one, and one that has already
-- ended changes nothing. Returns 1, 0 when the pause had ended, or {-1,
-- def} when the stored definition differs.
local function pause(keys, args)
  local sp = begin(keys, args)
  local v, stored = load(sp)
  if not v then return {-1, stored} end
  local spec, till = tonumber(args[2]), tonumber(args[3])
  local rt, t = clock(args[4], v[CLOCK])
  if till <= t then return 0 end
  local lo, hi = spec, spec
  if spec == 0 then lo, hi = 1, sp.n end
  local p = pauses(sp, v)
  for i = lo, hi do
    if till > p[i] then
      if sp.narrow then v[sp[i].fo] = till else redis.call('HSET', KF, sp.pfields[i], till) end
    end
  end
  v[PX] = max(v[PX], till)
  if not sp.narrow then fresh(KF) end
  commit(sp, v, t, rt)
  notify(true)
  return 1
end

-- lower: ARGV[2] the spec (from 1; a rate limit), ARGV[3] remaining,
-- ARGV[4] asOf (µs), then the test clock if any. Takes now what leaves at
-- most remaining available (see each algorithm's lower), unless a report
-- with a later asOf was applied to the spec. Returns 1 when applied, 0 when
-- stale, or {-1, def} when the stored definition differs.
local function lower(keys, args)
  local sp = begin(keys, args)
  local v, stored = load(sp)
  if not v then return {-1, stored} end
  local spec, remaining, asof = tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
  local rt, t = clock(args[5], v[CLOCK])
  local s = sp[spec]
  if sp.narrow then
    if asof < v[s.fo + 1] then return 0 end
    v[s.fo + 1] = asof
  else
    local field = 'a' .. spec
    local newest = tonumber(redis.call('HGET', KF, field))
    if newest and asof < newest then return 0 end
    redis.call('HSET', KF, field, asof)
    fresh(KF)
  end
  TE = t
  s:lower(v, t, remaining)
  v[IB] = max(v[IB], s:idle(v, t))
  commit(sp, v, t, rt)
  notify(true)
  return 1
end
