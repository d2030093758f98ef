-- concurry redis backend: the library every entry point is built on.
--
-- On Redis 7 and later it is loaded once with FUNCTION LOAD, which
-- registers the entry points (acquire, check, settle, renew, stats,
-- project, pause, lower) as functions: nothing here is rebuilt per call.
-- Elsewhere each entry point runs as a script (EVALSHA) made of this
-- library and that entry. Loading
-- runs no library code but the definitions: the Lua globals (string, math,
-- struct...) are only there during calls.
--
-- KEYS: [1] the set's state (a string, see state.lua), [2] the leases: a
-- zset of "id amount..." -> expiry (µs), [3] the lost leases: a zset of the
-- members of leases that expired unreleased -> until when the record is kept
-- (see reap), [4] the feedback: a hash of the pauses and the upstream
-- reports applied (see feedback.lua), then the entry list of every
-- SlidingWindow spec, in spec order. All share one hash tag.
-- ARGV: [1] the set's parameters: a digest of its definition (below 2^52),
-- the lease TTL in µs, 5 numbers per spec (algorithm or 9 for a resource,
-- capacity C, window W in µs, C/g, W/g with g = gcd(C, W)), then ";" and the
-- definition; then what the entry reads from ARGV[2] on. Tests may add a
-- clock (µs) to use instead of Redis TIME, where each entry says.
--
-- Every number is an integer below 2^53, so Lua's doubles hold it exactly;
-- numbers go to redis.call as numbers, which Redis prints as integers below
-- 2^53 (the common call's lease expiry as string.format('%d'), which costs
-- less than Redis's printing of a double). Products that may pass 2^52 go through muldiv, which is exact. The
-- inputs are bounded so that every sum stays below 2^53: capacities and
-- amounts are at most 2^50, windows at most 366 days (< 2^45 µs), instants
-- below 2^52 (until the year 2112), and the client clamps every settle delta
-- to [-2^52, 2^52]; debts, counts and instants saturate at 2^52.

local LIM = 4503599627370496   -- 2^52: debts, counts and instants saturate here
local NEVER = LIM              -- an instant that never comes
local RESOURCE = 9             -- the algorithm code of a Resource spec
local KEEP_LOST = 3600000000   -- how long a lost lease's record is kept: 1 h in µs
local SLIDING = 2              -- the algorithm code of SlidingWindow

-- The math functions the library uses, as upvalues: cheaper than a
-- global lookup (math.floor is two), and bound on a call's start (see
-- bind), since FUNCTION LOAD runs the library where no global exists.
local floor, ceil, max, min = nil, nil, nil, nil

-- bind binds the math upvalues; a call runs it first.
local function bind()
  floor, ceil, max, min = math.floor, math.ceil, math.max, math.min
end

-- FLOOR: a call to a C function (math.floor, math.max...) costs Redis
-- about as much as ten Lua operations, so the code every call runs
-- compares with if instead of max and min, and floors x as x - x % 1 (for
-- a double x of either sign, exact: the VM computes % inline).

-- COERCE: the common call converts a numeral string (an amount, TIME's µs)
-- to a number by arithmetic on it (x + 0), which the VM converts inline,
-- rather than by tonumber, a C call. The strings are the client's
-- integers and Redis's, so the conversion cannot fail.

-- SEC is the seconds of the latest server TIME seen and SEC_US the same
-- in µs: most calls read the same second as the one before, and converting
-- the string again would cost as much as the rest of clock. A function
-- library keeps them from call to call.
local SEC, SEC_US = nil, 0

-- FUNCTIONS is true in the function library (Redis 7 and later), whose
-- loader sets it; scripts must also run on older servers.
local FUNCTIONS = false

-- The call being served. Redis runs one call at a time, so begin sets them
-- for the call that is running until it returns.
local KS, KE, KL, KF, KEYS_ = nil, nil, nil, nil, nil
local DIRTY = false  -- the state changed though nothing was taken
local TE = nil       -- the instant this call evaluated the rate limits at; nil if it did not (see commit)
local TESTING = false -- the call runs on a test clock, not Redis TIME
local FRESH = nil    -- keys this call created, which have no expiry yet
local FREED = false  -- the call gave units back (settle): waiters may go on

-- fresh notes that this call created key k.
local function fresh(k)
  if FRESH then FRESH[#FRESH + 1] = k else FRESH = {k} end
end

-- idiv returns floor(a/b) for 0 <= a < 2^52 and 0 < b < 2^52. The double
-- quotient is never below the true floor and at most one above it.
local function idiv(a, b)
  local q = a / b
  q = q - q % 1 -- floor(q), without a C call (see FLOOR)
  if q * b > a then q = q - 1 end
  return q
end

-- addmod returns (r+x) mod d and the carry, for 0 <= r, x < d.
local function addmod(r, x, d)
  if r >= d - x then return r - (d - x), 1 end
  return r + x, 0
end

-- muldiv returns floor(a*b/d) and a*b mod d for a, b, d < 2^52, d > 0. A
-- product below 2^52 is divided directly; a larger one by double-and-add,
-- which keeps every intermediate below 2^53 (the exact slow path). The
-- quotient saturates at NEVER.
local function muldiv(a, b, d)
  local p = a * b
  if p < LIM then
    local q = idiv(p, d)
    return q, p - q * d
  end
  local bq = idiv(b, d)
  local br = b - bq * d
  local q = a * bq
  if q >= LIM then return NEVER, 0 end
  local hq, r, bit, c = 0, 0, 1, 0
  while bit * 2 <= a do bit = bit * 2 end
  while bit >= 1 do
    r, c = addmod(r, r, d)
    hq = hq * 2 + c
    if a >= bit then
      a = a - bit
      r, c = addmod(r, br, d)
      hq = hq + c
    end
    bit = bit / 2
  end
  q = q + hq
  if q >= LIM then return NEVER, 0 end
  return q, r
end

-- scale returns floor((span*mul + rem)/div) and the remainder, saturating at
-- NEVER; span, rem >= 0. When span*mul + rem is below 2^52, as it is for
-- round limits and short spans, it is one exact division.
local function scale(span, rem, mul, div)
  local p = span * mul + rem
  if p < LIM then
    local q = p / div
    q = q - q % 1
    if q * div > p then q = q - 1 end
    return q, p - q * div
  end
  local a = idiv(span, div)
  local q, r = muldiv(span - a * div, mul, div)
  local q2 = idiv(rem, div)
  local c
  r, c = addmod(r, rem - q2 * div, div)
  local hi = a * mul
  if hi >= LIM then return NEVER, 0 end
  q = hi + q + q2 + c
  if q >= LIM then return NEVER, 0 end
  return q, r
end

-- clock returns the server's time in µs (or the test clock over, when not
-- nil) and the set's clock: the same, but never before last, the latest
-- instant the set has used.
local function clock(over, last)
  local rt
  TESTING = over ~= nil
  if over then
    rt = tonumber(over)
  else
    local tm = redis.call('TIME')
    local sec = tm[1]
    if sec ~= SEC then SEC, SEC_US = sec, tonumber(sec) * 1000000 end
    rt = SEC_US + tm[2] -- see COERCE
  end
  if last > rt then return rt, last end
  return rt, rt
end

local function notify(freed)
  if freed then redis.call('PUBLISH', KS .. ':free', '1') end
end
