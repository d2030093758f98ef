-- project: ARGV[2] k, the number of this process's waiters ahead of a
-- request; then (k + 1)·n amounts: theirs, in queue order, then the
-- request's; then the test clock if any. Returns {t, ready}: the earliest
-- instant the rate limits could grant the request if every waiter ahead is
-- granted first, each as soon as it can and no earlier than the one before
-- it (NEVER if never). Resources are not projected: a release may come at
-- any time. Nothing is written: SlidingWindow lists are read into copies.
local function project(keys, args)
  local sp = begin(keys, args)
  local v, stored = load(sp)
  if not v then return {-1, stored} end
  local k = tonumber(args[2])
  local _, t = clock(args[3 + (k + 1) * sp.n], v[CLOCK])
  LIST = sim_list()
  local at = t
  for j = 0, k do
    local base, ready = 2 + j * sp.n, at
    for i = 1, sp.n do
      local n, s = tonumber(args[base + i]), sp[i]
      if n > 0 and s.alg ~= RESOURCE then ready = math.max(ready, s:ready(v, at, n)) end
    end
    if ready >= NEVER then return {t, NEVER} end
    at = ready
    if j < k then
      for i = 1, sp.n do
        local n, s = tonumber(args[base + i]), sp[i]
        if n > 0 and s.alg ~= RESOURCE then s:take(v, at, n) end
      end
    end
  end
  return {t, at}
end
