-- concurry redis backend: shared library, prepended to every entry script.
--
-- KEYS: [1] the state hash, [2] the lease hash (id -> granted amounts),
-- [3] the lease expiry zset (id -> expiry, µs), [3+i] the entry list of spec i
-- (used by SlidingWindow specs only). All share one hash tag.
-- ARGV: [1] clock override in µs ("0": Redis TIME), [2] definition, [3] n,
-- then 5 numbers per spec (algorithm or 9 for a resource, capacity C,
-- window W in µs, C/g, W/g with g = gcd(C, W)), then the channel, the lease
-- TTL in µs, then what the entry script reads from ARG0 on.
--
-- Every number is an integer below 2^53, so Lua's doubles hold it exactly.
-- Products that may pass 2^52 go through muldiv, which is exact.

if redis.replicate_commands then pcall(redis.replicate_commands) end

local LIM = 4503599627370496   -- 2^52: debts, counts and instants saturate here
local NEVER = LIM              -- an instant that never comes
local KM, KL, KE = KEYS[1], KEYS[2], KEYS[3]
local DEF, N = ARGV[2], tonumber(ARGV[3])
local CHANNEL = ARGV[4 + 5 * N]
local LEASE_TTL = tonumber(ARGV[5 + 5 * N])
local ARG0 = 6 + 5 * N

-- idiv returns floor(a/b) for 0 <= a < 2^52 and 0 < b < 2^52. The double
-- quotient is never below the true floor and at most one above it.
local function idiv(a, b)
  local q = math.floor(a / b)
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
-- which keeps every intermediate below 2^53. The quotient saturates at NEVER.
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
-- NEVER; span, rem >= 0.
local function scale(span, rem, mul, div)
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

local function fmt(x) return string.format('%.0f', x) end

local function split(s)
  local out = {}
  for w in string.gmatch(s, '%S+') do out[#out + 1] = tonumber(w) end
  return out
end

-- head reads the definition, the clock and every spec's state in one call.
-- It stores the definition on first use and returns the stored one when it
-- differs; otherwise nil, then the clock (Redis TIME or the override, never
-- earlier than any instant the set has seen) and the raw states.
local function head()
  local f = {'def', 'clock'}
  for i = 1, N do f[i + 2] = 's' .. i end
  local raw = redis.call('HMGET', KM, unpack(f))
  if not raw[1] then
    redis.call('HSET', KM, 'def', DEF)
  elseif raw[1] ~= DEF then
    return raw[1]
  end
  local t = tonumber(ARGV[1])
  if t == 0 then
    local tm = redis.call('TIME')
    t = tonumber(tm[1]) * 1000000 + tonumber(tm[2])
  end
  local c = tonumber(raw[2] or '0')
  if c > t then t = c end
  return nil, t, raw
end

-- now returns the set's clock without reading the states.
local function now()
  local t = tonumber(ARGV[1])
  if t == 0 then
    local tm = redis.call('TIME')
    t = tonumber(tm[1]) * 1000000 + tonumber(tm[2])
  end
  local c = tonumber(redis.call('HGET', KM, 'clock') or '0')
  if c > t then t = c end
  return t
end

local function specs()
  local out = {}
  for i = 1, N do
    local b = 3 + 5 * (i - 1)
    out[i] = {alg = tonumber(ARGV[b + 1]), C = tonumber(ARGV[b + 2]), W = tonumber(ARGV[b + 3]),
      cr = tonumber(ARGV[b + 4]), wr = tonumber(ARGV[b + 5]), list = KEYS[3 + i]}
  end
  return out
end
