-- A set's state: parameters, loading, saving, expiry, and reaping expired
-- leases.
--
-- The state key holds the numbers v, struct-packed as doubles: the header
-- below, then each spec's numbers from v[s.o + 1] (see algorithms.lua; a
-- resource has one: the units held). It is read with one GET and written
-- with one SET. The lease zset also holds the definition, as the member
-- "=definition" with score +inf: it is never reaped, so the zset lives as
-- long as the state.
--
-- A narrow set (no resource, no SlidingWindow: nothing but numbers) keeps
-- everything in the state key, and its calls name no other key: every
-- key a call names is a string Redis and Lua make anew, which costs a
-- call as much as a good part of its work once identities rotate. After
-- the spec numbers it keeps, per spec, the two numbers a wide set keeps in
-- the feedback hash (see feedback.lua): at v[s.fo] the instant its pause
-- ends (0 if none), at v[s.fo + 1] the asOf of the newest report lowered
-- into it (-NEVER if none); then the definition. A call that does not move
-- the expiry writes the numbers alone, with SETRANGE from 0, which keeps
-- the definition and the expiry. The definition starts at the first
-- "concurry/" of the state: a match that begins in the numbers holds the
-- top byte of one of them, and the top byte of a double whose magnitude is
-- an integer below 2^53 is 0x00, 0x3F-0x43, 0x80 or 0xBF-0xC3, none a byte
-- of "concurry/".

local DIGEST = 1 -- the definition's digest
local CLOCK = 2  -- the set's clock: the latest instant its rate limits were evaluated at
local RH = 3     -- the reap hint: no lease expires before it
local XP = 4     -- when the keys expire, in server time (µs); 0 for a new set
local LX = 5     -- until when lost-lease records are kept (µs); 0 if none was
local PX = 6     -- the latest instant a pause ends (µs); 0 if none was (see feedback.lua)
local IB = 7     -- the idle bound: no rate limit is back at its initial state later (µs; see charge)
local HEAD = 7

-- The parsed parameters, by parameter string and, in a function library,
-- also by its short form: '#' and the string's SHA-1 in hex, which the
-- client sends in its place (a long argument costs Redis as much as a
-- dozen Lua operations per 16 bytes). A function library keeps them from
-- call to call (a script parses them on every call, and is always sent the
-- whole string); the cache is emptied when it reaches 512 entries. A short
-- form the cache lacks (the library was just loaded, or the cache emptied)
-- fails the call before it does anything, with an error reply starting
-- NOSPEC: the client then sends the call again with the whole string.
local SPECS, NSPECS = {}, 0

local function parse(p)
  local cut = string.find(p, ';', 1, true)
  local w = {}
  for x in string.gmatch(string.sub(p, 1, cut - 1), '%S+') do w[#w + 1] = tonumber(x) end
  local n = (#w - 2) / 5
  local sp = {ttl = w[2], n = n, res = false, def = string.sub(p, cut + 1), init = {w[1], 0, NEVER, 0, 0, 0, 0}}
  local o, li, narrow = HEAD, 4, true
  for i = 1, n do
    local b = 2 + 5 * (i - 1)
    local s = {alg = w[b + 1], C = w[b + 2], W = w[b + 3], cr = w[b + 4], wr = w[b + 5], o = o}
    s.pace = s.W / s.C -- µs per unit, for span: a bound, not exact
    local iv = {0}
    if s.alg == RESOURCE then
      sp.res, narrow = true, false
    else
      local a = ALG[s.alg]
      iv = {a.init(s)}
      s.ready, s.take, s.refund, s.avail, s.idle = a.ready, a.take, a.refund, a.avail, a.idle
      s.debt, s.lower, s.span, s.horizon, s.untake = a.debt, a.lower, a.span, a.horizon, a.untake
      if s.alg == SLIDING then li, s.li, narrow = li + 1, li + 1, false end
    end
    for k = 1, #iv do sp.init[o + k] = iv[k] end
    o = o + #iv
    sp[i] = s
  end
  if narrow then
    for i = 1, n do
      sp[i].fo = o + 1
      sp.init[o + 1], sp.init[o + 2] = 0, -NEVER
      o = o + 2
    end
  end
  -- a narrow set's state is written whole with pfmt: the numbers, then
  -- the definition (see commit)
  sp.narrow, sp.size, sp.fmt, sp.bytes = narrow, o, '<' .. string.rep('d', o), 8 * o
  if narrow then sp.pfmt, sp.bytes = sp.fmt .. 'c0', 8 * o + #sp.def end
  sp.pfields = {}
  for i = 1, n do sp.pfields[i] = 'p' .. i end
  if NSPECS >= 512 then SPECS, NSPECS = {}, 0 end
  SPECS[p], NSPECS = sp, NSPECS + 1
  if FUNCTIONS then SPECS['#' .. redis.sha1hex(p)], NSPECS = sp, NSPECS + 1 end
  return sp
end

-- begin starts a call: it sets the call's keys and returns its specs.
local function begin(keys, args)
  if not floor then bind() end
  KS, KE, KL, KF, KEYS_ = keys[1], keys[2], keys[3], keys[4], keys
  DIRTY, FRESH, TE, LIST, FREED = false, nil, nil, REDIS_LIST, false
  local p = args[1]
  local sp = SPECS[p]
  if sp then return sp end
  if string.byte(p) == 35 then -- '#': a short form (see SPECS)
    error({err = 'NOSPEC concurry: these parameters are not cached here; send them whole'})
  end
  return parse(p)
end

-- no_lease fails a call that names a lease of a narrow set, which records
-- none (its calls name no lease zset): the client sends none.
local function no_lease()
  error({err = 'ERR concurry: a set without resources records no lease'})
end

-- load reads the state: a new one when the set has none, or nil and the
-- stored definition when the set has another definition.
local function load(sp)
  local raw = redis.call('GET', KS)
  if not raw then
    -- leases, feedback and lists that outlived their set would be stale (a
    -- narrow set has none of them, and its calls name no such key)
    if not sp.narrow then
      redis.call('DEL', KE, KL, KF)
      for i = 1, sp.n do
        if sp[i].li then redis.call('DEL', KEYS_[sp[i].li]) end
      end
    end
    return {unpack(sp.init)}
  end
  if #raw == sp.bytes then
    local v = {struct.unpack(sp.fmt, raw)}
    if v[DIGEST] == sp.init[DIGEST] then return v end
  end
  local at = string.find(raw, 'concurry/', 1, true) -- a narrow set's (see above)
  if at then return nil, string.sub(raw, at) end
  -- a wide set's: its definition is in its lease zset, which a narrow
  -- set's call does not name
  local def = KE and redis.call('ZRANGE', KE, -1, -1)[1] or '=another definition'
  return nil, string.sub(def, 2)
end

-- pauses returns, per spec, the instant its pause ends (0 if none), read
-- from the feedback hash (a narrow set's state). Only a call that finds
-- v[PX] in its future needs it, so the common call reads nothing more than
-- the state.
local function pauses(sp, v)
  if sp.narrow then
    local p = {}
    for i = 1, sp.n do p[i] = v[sp[i].fo] end
    return p
  end
  local p = redis.call('HMGET', KF, unpack(sp.pfields))
  for i = 1, sp.n do p[i] = tonumber(p[i]) or 0 end
  return p
end

-- paused returns the instant a request of amounts can be granted at, and
-- the spec that decides it, given that its rate limits allow it at ready
-- (decided by slow): ready, or later when a spec it takes is paused beyond.
-- Callers skip it while v[PX] <= ready: no pause lasts past ready.
local function paused(sp, v, amounts, ready, slow)
  local p = pauses(sp, v)
  for i = 1, sp.n do
    if amounts[i] > 0 and p[i] > ready then ready, slow = p[i], i end
  end
  return ready, slow
end

-- member_id returns the id of lease member m, "id amount...".
local function member_id(m)
  return string.match(m, '^%S+')
end

-- member_amounts returns the amounts of lease member m, "id amount...".
local function member_amounts(m)
  local out, k = {}, 0
  for x in string.gmatch(m, '%S+') do
    if k > 0 then out[k] = tonumber(x) end
    k = k + 1
  end
  return out
end

-- reap ends up to 64 leases whose expiry is at or before t, returning their
-- resource units, and records them as lost in KL, where their holder's
-- settle still finds them for KEEP_LOST (see settle); it drops the records
-- kept long enough. It runs only from the reap hint on (callers may skip
-- it before), and moves the hint to the next expiry. It returns whether it
-- freed units.
local function reap(sp, v, t)
  if t < v[RH] then return false end
  DIRTY = true
  local r = redis.call('ZRANGE', KE, 0, 64, 'WITHSCORES')
  local gone = {}
  v[RH] = NEVER
  for j = 1, #r, 2 do
    local e = tonumber(r[j + 1])
    if e > t or j > 128 then v[RH] = min(e, NEVER); break end
    gone[#gone + 1] = r[j]
  end
  if v[LX] > 0 then
    redis.call('ZREMRANGEBYSCORE', KL, '-inf', t)
    if v[LX] <= t then v[LX] = 0 end
  end
  if #gone == 0 then return false end
  local freed, keep, records = false, t + KEEP_LOST, {}
  for _, m in ipairs(gone) do
    local held = sp.res and member_amounts(m) or {}
    for i = 1, sp.n do
      local s = sp[i]
      if s.alg == RESOURCE and (held[i] or 0) > 0 then
        v[s.o + 1] = v[s.o + 1] - held[i]
        freed = true
      end
    end
    records[#records + 1] = keep
    records[#records + 1] = m
  end
  redis.call('ZREM', KE, unpack(gone))
  redis.call('ZADD', KL, unpack(records))
  v[LX] = max(v[LX], keep)
  return freed
end

-- charge records that a grant took units of rate limits at p: d is the
-- most span of the pace algorithms that took (-1 when none did), h the
-- latest horizon of the window algorithms that took (nil when none did;
-- see each algorithm's span and horizon). No rate limit can be back at its
-- initial state later than max(max(v[IB], p) + d, h). So a call that takes
-- finds whether the keys' expiry must move from the header alone; refunds,
-- which make that instant earlier, leave the bound as it is. A window's
-- horizon is the instant its idle would be, not a span added to the bound:
-- a set of FixedWindow limits moves its expiry once a window, not on every
-- call (see deadline).
local function charge(v, p, d, h)
  local b = v[IB]
  if d >= 0 then
    if p > b then b = p end
    b = b + d
  end
  if h and h > b then b = h end
  if b > NEVER then b = NEVER end
  v[IB] = b
end

-- charge_one is charge for units of spec s alone, n taken at p.
local function charge_one(v, p, s, n)
  if s.horizon then charge(v, p, -1, s:horizon(v, p)) else charge(v, p, s:span(n)) end
end

-- lifetime returns how long, in ms, the keys must live from t when the rate
-- limits are back at their initial state at rates: until a second after
-- that, every pause has ended, every lease has expired (leases live at most
-- the lease TTL past t; a set without resources has none) and every
-- lost-lease record has been kept long enough.
local function lifetime(sp, v, t, rates)
  local at = max(rates, t, v[LX], v[PX])
  if sp.res then at = max(at, t + sp.ttl) end
  return min(ceil((at - t) / 1000), 400 * 86400000) + 1000
end

-- idle returns the instant from which every rate limit is back at its
-- initial state.
local function idle(sp, v)
  local at = 0
  for i = 1, sp.n do
    local s = sp[i]
    if s.alg ~= RESOURCE then at = max(at, s:idle(v, v[CLOCK])) end
  end
  return at
end

-- deadline returns the expiry of the keys, in ms from rt, and whether it
-- moved. It only ever moves it later: when the keys would expire within the
-- set's lifetime it moves it to a second past that and puts every other key
-- in FRESH (of a new set, the lease zset beside the keys this call
-- created: no other exists), so that a busy set extends its expiry about
-- once a second, not on every call; otherwise FRESH holds the keys this
-- call created. The
-- lifetime is first bounded from the idle bound (see charge): only when
-- that bound says the expiry might have to move is it computed exactly,
-- and the bound brought down to the exact instant.
local function deadline(sp, v, t, rt)
  local have = v[XP] - rt
  -- First the common case, inline (see FLOOR): lifetime(sp, v, t, v[IB])
  -- is under (at - t + 1000) µs + 1 s, at its latest instant below.
  local at = v[IB]
  if t > at then at = t end
  if v[LX] > at then at = v[LX] end
  if v[PX] > at then at = v[PX] end
  if sp.res and t + sp.ttl > at then at = t + sp.ttl end
  if have >= at - t + 1001000 then
    local ms = have / 1000
    local whole = ms - ms % 1
    if whole < ms then whole = whole + 1 end
    return whole, false
  end
  if have >= lifetime(sp, v, t, v[IB]) * 1000 then return ceil(have / 1000), false end
  v[IB] = idle(sp, v)
  local need = lifetime(sp, v, t, v[IB])
  if have >= need * 1000 then return ceil(have / 1000), false end
  local ms = need + 1000
  local new = v[XP] == 0
  v[XP] = rt + ms * 1000
  if new then
    -- load deleted the other keys of a new set: those that exist are the
    -- ones this call made, in FRESH, and the lease zset, which holds the
    -- definition from this call's commit on (a narrow set has no other key)
    if not sp.narrow then fresh(KE) end
    return ms, true
  end
  if sp.narrow then return ms, true end
  FRESH = {KE, KL, KF}
  for i = 1, sp.n do
    if sp[i].li then FRESH[#FRESH + 1] = KEYS_[sp[i].li] end
  end
  return ms, true
end

-- commit writes the state at t (rt is the server's time) and gives the keys
-- their expiry; the other keys expire a ms after the state, so that they
-- never go first. When the expiry does not move, and no test clock (which
-- need not run with the server's) is in use, it writes the numbers alone
-- with SETRANGE over those load read, which keeps the expiry (as KEEPTTL
-- would, on Redis 6 and later; PX costs twice as much) and the value's
-- object, and leaves a narrow set's definition after them.
local function commit(sp, v, t, rt)
  local new = v[XP] == 0
  -- The clock moves only when the rate limits were evaluated (TE): a call
  -- that changes none (a settle without usage to apply, a renewal, a
  -- refusal) leaves a waiter's grant free to be dated from the last one on
  -- (see attempt).
  if TE then v[CLOCK] = TE end
  local ms, moved = deadline(sp, v, t, rt)
  if moved or TESTING then
    local blob
    if sp.narrow then
      v[sp.size + 1] = sp.def
      blob = struct.pack(sp.pfmt, unpack(v, 1, sp.size + 1))
    else
      blob = struct.pack(sp.fmt, unpack(v, 1, sp.size))
    end
    redis.call('SET', KS, blob, 'PX', ms)
  else
    redis.call('SETRANGE', KS, '0', struct.pack(sp.fmt, unpack(v, 1, sp.size)))
  end
  if new and not sp.narrow then redis.call('ZADD', KE, '+inf', '=' .. sp.def) end
  if FRESH then
    for _, k in ipairs(FRESH) do redis.call('PEXPIRE', k, ms + 1) end
  end
end

-- end_lease ends lease m, granted amounts, at t: it returns its resources
-- and returns the settle's code (1 live, 2 lost), or nil when the lease is
-- unknown (settled before, or lost long ago): then nothing is to apply.
local function end_lease(sp, v, t, m, granted)
  local exp = redis.call('ZSCORE', KE, m)
  if not exp then
    local keep, tomb = redis.call('ZSCORE', KL, m), '~' .. member_id(m)
    if not keep then return nil end
    redis.call('ZREM', KL, m)
    redis.call('ZADD', KL, keep, tomb)
    return 2
  end
  local code = 1
  redis.call('ZREM', KE, m)
  if tonumber(exp) <= t then -- expired, not reaped yet: lost all the same
    code = 2
    redis.call('ZADD', KL, t + KEEP_LOST, '~' .. member_id(m))
    v[LX] = max(v[LX], t + KEEP_LOST)
  end
  for i = 1, sp.n do
    local s = sp[i]
    if s.alg == RESOURCE and granted[i] > 0 then
      v[s.o + 1] = v[s.o + 1] - granted[i]
      FREED = true
    end
  end
  return code
end
