-- settle: ARG0 lease id, then n deltas (usage beyond the grant: positive is
-- charged, negative refunded where the algorithm refunds, at most what was
-- granted). Ends the lease and returns its resources. Returns {1, refunded
-- per spec...}, or {0} when the lease is gone: settled before, or expired.
local id = ARGV[ARG0]
local rec = redis.call('HGET', KL, id)
if not rec then return {0} end
local _, t, raw = head()
if not t then return {0} end
local sp = specs()
local st = load(sp, raw)
local granted = split(rec)
local freed = reap(sp, st, t)
local out = {1}
for i = 1, N do
  local d, got = tonumber(ARGV[ARG0 + i]), 0
  if sp[i].alg == RESOURCE then
    if granted[i] > 0 then
      st[i][1] = st[i][1] - granted[i]
      freed = true
    end
  elseif d > 0 then
    ALG[sp[i].alg].take(sp[i], st[i], t, d)
  elseif d < 0 then
    got = ALG[sp[i].alg].refund(sp[i], st[i], t, math.min(-d, granted[i]))
    if got > 0 then freed = true end
  end
  out[i + 1] = got
end
redis.call('HDEL', KL, id)
redis.call('ZREM', KE, id)
save(sp, st, t)
notify(freed)
return out
