-- stats: ARGV[2] the test clock if any. Returns {1, available, in use, ...}
-- per spec, or {-1, def} when the stored definition differs. Stores the
-- definition on first use.
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
  local out = {1}
  for i = 1, sp.n do
    local s = sp[i]
    if s.alg == RESOURCE then
      out[#out + 1] = math.max(s.C - v[s.o + 1], 0)
      out[#out + 1] = v[s.o + 1]
    else
      out[#out + 1] = s:avail(w, t)
      out[#out + 1] = 0
    end
  end
  LIST, DIRTY = REDIS_LIST, dirty
  if DIRTY or v[XP] == 0 then commit(sp, v, t, rt) end
  notify(freed)
  return out
end
