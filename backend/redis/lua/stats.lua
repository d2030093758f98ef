-- stats: ARGV[2] the test clock if any. Returns {1, available, in use,
-- debt, ...}, three numbers per spec, or {-1, def} when the stored
-- definition differs. A paused spec has nothing available until its pause
-- ends. Stores the definition on first use.
local function stats(keys, args)
  local sp = begin(keys, args)
  local v, stored = load(sp)
  if not v then return {-1, stored} end
  local rt, t = clock(args[2], v[CLOCK])
  local freed = reap(sp, v, t)
  -- The rate limits are read on copies, so that the set's clock stays where
  -- it was (see commit).
  local w, dirty = {unpack(v)}, DIRTY
  LIST = sim_list()
  local p = nil
  if v[PX] > t then p = pauses(sp, v) end
  local out = {1}
  for i = 1, sp.n do
    local s, a, u, d = sp[i], 0, 0, 0
    if s.alg == RESOURCE then
      a, u = max(s.C - v[s.o + 1], 0), v[s.o + 1]
    else
      a, d = s:avail(w, t), s:debt(w, t)
    end
    if p and p[i] > t then a = 0 end
    out[3 * i - 1], out[3 * i], out[3 * i + 1] = a, u, d
  end
  LIST, DIRTY = REDIS_LIST, dirty
  if DIRTY or v[XP] == 0 then commit(sp, v, t, rt) end
  notify(freed)
  return out
end
