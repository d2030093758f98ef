-- project: ARGV[2] k, the number of this process's waiters ahead of a
-- request; then (k + 1)·n amounts: theirs, in queue order, then the
-- request's; then the test clock if any. Returns {t, ready, slow, short}:
-- ready is the earliest instant the rate limits and pauses could grant the
-- request if every waiter ahead is granted first, each as soon as it can
-- and no earlier than the one before it (NEVER if never); slow is the spec
-- (from 1) that decides it: the request's own when its instant is later
-- than the queue's, else the one that held up the last waiter ahead (0 if
-- none did); short is the request's own resource spec without room, else
-- the first one a waiter ahead lacks, each keeping what it takes (0 if
-- none). Releases may come at any time: only ready is a bound. Nothing is
-- written: SlidingWindow lists are read into copies.
local function project(keys, args)
  local sp = begin(keys, args)
  local v, stored = load(sp)
  if not v then return {-1, stored} end
  local k = tonumber(args[2])
  local _, t = clock(args[3 + (k + 1) * sp.n], v[CLOCK])
  LIST = sim_list()
  local at, slow, short = t, 0, 0
  for j = 0, k do
    local base, ready, jslow, jshort, amounts = 2 + j * sp.n, at, 0, 0, {}
    for i = 1, sp.n do
      local n, s = tonumber(args[base + i]), sp[i]
      amounts[i] = n
      if n > 0 and s.alg ~= RESOURCE then
        local r = s:ready(v, at, n)
        if r > ready then ready, jslow = r, i end
      elseif n > 0 and jshort == 0 and n > s.C - v[s.o + 1] then
        jshort = i
      end
    end
    if v[PX] > ready then ready, jslow = paused(sp, v, amounts, ready, jslow) end
    if ready > at then at, slow = ready, jslow end
    if (j < k and short == 0) or (j == k and jshort > 0) then short = jshort end
    if at >= NEVER then return {t, NEVER, slow, short} end
    if j < k then
      for i = 1, sp.n do
        local n, s = amounts[i], sp[i]
        if n > 0 and s.alg ~= RESOURCE then s:take(v, at, n) elseif n > 0 then v[s.o + 1] = v[s.o + 1] + n end
      end
    end
  end
  return {t, at, slow, short}
end
