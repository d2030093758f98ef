package httplimit_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/httplimit"
)

// loadServer serves 200 OK behind Handler on a loopback port and records,
// per identity, the instants it admitted requests.
type loadServer struct {
	url      string
	mu       sync.Mutex
	admitted map[string][]time.Time // guarded by mu
}

func newLoadServer(t *testing.T, limits ...concurry.Limit) *loadServer {
	ls := &loadServer{admitted: make(map[string][]time.Time)}
	// Grants are recorded by the Granted hook, as close to the decision as
	// an observer gets; the handler's own clock would lag it under load.
	record := func(i concurry.GrantInfo) {
		ls.mu.Lock()
		id := strings.TrimPrefix(i.Set.Name(), "load/")
		ls.admitted[id] = append(ls.admitted[id], time.Now())
		ls.mu.Unlock()
	}
	k, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: limits, Name: "load", Hooks: &concurry.Hooks{Granted: record}})
	require.NoError(t, err)
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	srv := httptest.NewServer(httplimit.Handler(ok, httplimit.Options{Keyed: k, Identity: httplimit.Header("X-Api-Key")}))
	t.Cleanup(srv.Close)
	ls.url = srv.URL
	return ls
}

func loadClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
}

func send(c *http.Client, url, id string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("X-Api-Key", id)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}

// 10,000 identities each send two and a half times their bound at once: each is
// admitted exactly its bound, and every refusal is a 429 with Retry-After.
func TestLoadManyIdentitiesExact(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	srv := newLoadServer(t, concurry.CallLimit{Window: time.Hour, Capacity: 2})
	c := loadClient()
	const ids, perID = 10_000, 5
	var refused, noRetry atomic.Int64
	var wg sync.WaitGroup
	work := make(chan string)
	for range 32 {
		wg.Go(func() {
			for id := range work {
				for range perID {
					code, retry, err := send(c, srv.url, id)
					if err != nil {
						t.Error(err)
						return
					}
					if code == http.StatusTooManyRequests {
						refused.Add(1)
						if retry == "" {
							noRetry.Add(1)
						}
					}
				}
			}
		})
	}
	for i := range ids {
		work <- "user-" + strconv.Itoa(i)
	}
	close(work)
	wg.Wait()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	require.Len(t, srv.admitted, ids)
	for id, at := range srv.admitted {
		if len(at) != 2 {
			t.Fatalf("%s admitted %d, want exactly 2", id, len(at))
		}
	}
	assert.Equal(t, int64(ids*(perID-2)), refused.Load())
	assert.Zero(t, noRetry.Load(), "every 429 carries Retry-After")
}

// 50 identities send at ten times their rate for three seconds: over every
// window each is admitted no more than its bound, and at least 95 % of what
// the bound allows; a client that waits exactly Retry-After is admitted.
func TestLoadTenTimesTheRate(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	const window, capacity = time.Second, 4
	srv := newLoadServer(t, concurry.CallLimit{Window: window, Capacity: capacity, Algorithm: concurry.SlidingWindow})
	c := loadClient()
	const ids, run = 50, 3 * time.Second
	interval := window / (10 * capacity) // ten times the rate
	start := time.Now()
	var wg sync.WaitGroup
	var spanMu sync.Mutex
	span := make(map[string]time.Duration) // per identity: from its first request to its last
	for i := range ids {
		wg.Go(func() {
			id := fmt.Sprint("id-", i)
			tick := time.NewTicker(interval)
			defer tick.Stop()
			first, last := time.Now(), time.Now()
			for time.Since(start) < run {
				last = time.Now()
				if _, _, err := send(c, srv.url, id); err != nil {
					t.Error(err)
					return
				}
				<-tick.C
			}
			spanMu.Lock()
			span[id] = last.Sub(first)
			spanMu.Unlock()
		})
	}
	wg.Wait()
	srv.mu.Lock()
	// The hook observes each grant a little after the backend decided it, by
	// up to a scheduling delay: windows are checked shortened by that slack.
	const slack = 100 * time.Millisecond
	for id, at := range srv.admitted {
		slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
		for i := range at { // the bound over every window, ending at each admission
			n := 0
			for j := i; j >= 0 && at[i].Sub(at[j]) < window-slack; j-- {
				n++
			}
			if n > capacity {
				t.Fatalf("%s: %d admitted within %v ending %v", id, n, window, at[i].Sub(start))
			}
		}
		// A sliding window of capacity c admits c at once and then c per
		// window: over a span s, at least c·(1 + ⌊s/window⌋) of requests
		// sent ten times as often.
		minWant := int(0.95 * float64(capacity*(1+int(span[id]/window))))
		if len(at) < minWant {
			t.Errorf("%s admitted %d in %v, want at least %d", id, len(at), span[id], minWant)
		}
	}
	srv.mu.Unlock()

	// Waiting exactly Retry-After is enough.
	id := "patient"
	for range capacity {
		code, _, err := send(c, srv.url, id)
		require.NoError(t, err)
		require.Equal(t, 200, code)
	}
	code, retry, err := send(c, srv.url, id)
	require.NoError(t, err)
	require.Equal(t, http.StatusTooManyRequests, code)
	secs, err := strconv.Atoi(retry)
	require.NoError(t, err)
	time.Sleep(time.Duration(secs) * time.Second)
	code, _, err = send(c, srv.url, id)
	require.NoError(t, err)
	assert.Equal(t, 200, code, "admitted after exactly Retry-After")
}
