package bench

import (
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry/httplimit"
)

// floorScript is the least an exact FixedWindow limit on Redis does per
// request under concurry's contract: windows aligned to the Unix epoch on
// the server's clock (TIME), so that every host agrees where they start,
// and the window and its count in one key (GET, then SET). It checks no
// definition and keeps no other limits, leases, pauses or expiry
// bookkeeping: a yardstick for what the contract itself costs, not a
// limiter. KEYS[1] the identity's key; ARGV the window (µs), the capacity
// and the amount. It returns 1 when admitted, else 0.
var floorScript = redis.NewScript(`
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000000 + tonumber(tm[2])
local w, c, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local start = now - now % w
local count = 0
local raw = redis.call('GET', KEYS[1])
if raw then
  local s, k = struct.unpack('<dd', raw)
  if s == start then count = k end
end
if count + n > c then return 0 end
if count == 0 then
  redis.call('SET', KEYS[1], struct.pack('<dd', start, n), 'PX', math.ceil((start + w - now) / 1000) + 1000)
else
  redis.call('SET', KEYS[1], struct.pack('<dd', start, count + n), 'KEEPTTL')
end
return 1
`)

// floorMiddleware limits every identity (its remote IP, as the other
// middlewares) with floorScript: a fixed window of generous requests per
// hour, one round trip per request.
func floorMiddleware(client *redis.Client, prefix string) middleware {
	identity := httplimit.RemoteIP()
	window := time.Hour.Microseconds()
	return middleware{"Floor", func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := identity(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			ok, err := floorScript.Run(r.Context(), client, []string{"{" + prefix + ":" + id + "}"}, window, generous, 1).Int()
			switch {
			case err != nil:
				http.Error(w, "rate limiter unavailable", http.StatusServiceUnavailable)
			case ok != 1:
				http.Error(w, "too many requests", http.StatusTooManyRequests)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}}
}
