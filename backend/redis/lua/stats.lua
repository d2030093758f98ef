-- stats: returns {1, available, in use, ...} per spec, or {-1, def} when the
-- stored definition differs. Stores the definition on first use.
local stored, t, raw = head()
if stored then return {-1, stored} end
local sp = specs()
local st = load(sp, raw)
local freed = reap(sp, st, t)
local out = {1}
for i = 1, N do
  if sp[i].alg == RESOURCE then
    out[#out + 1] = math.max(sp[i].C - st[i][1], 0)
    out[#out + 1] = st[i][1]
  else
    out[#out + 1] = ALG[sp[i].alg].avail(sp[i], st[i], t)
    out[#out + 1] = 0
  end
end
save(sp, st, t)
notify(freed)
return out
