package httplimit_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/httplimit"
)

// Limits per API key on a net/http server: 2 requests per minute and one
// request at a time per key; a refusal is a 429 with Retry-After and the
// IETF RateLimit fields.
func ExampleHandler() {
	keyed, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: []concurry.Limit{
		concurry.CallLimit{Window: time.Minute, Capacity: 2},
		concurry.ResourceLimit{Key: "in_flight", Capacity: 1},
	}})
	if err != nil {
		panic(err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	mux := http.NewServeMux()
	mux.Handle("/", httplimit.Handler(hello, httplimit.Options{
		Keyed:    keyed,
		Identity: httplimit.Header("X-Api-Key"),
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("X-Api-Key", "alice")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fmt.Println(resp.StatusCode, "Retry-After:", resp.Header.Get("Retry-After"), "RateLimit-Policy:", resp.Header.Get("RateLimit-Policy"))
			continue
		}
		fmt.Println(resp.StatusCode)
	}
	// Output:
	// 200
	// 200
	// 429 Retry-After: 30 RateLimit-Policy: "call_count";q=2;w=60
}

// An OpenAI client whose requests go through a Transport: it spreads them
// over two accounts, never sends one the accounts' quotas would refuse, and
// settles each with the tokens the response reports.
func ExampleTransport() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42},"auth":%q}`, r.Header.Get("Authorization"))
	}))
	defer upstream.Close()
	account := func(key string) *concurry.LimitSet {
		ls, err := concurry.NewLimitSet(httplimit.Quota{Requests: 500, Tokens: 30_000}.Limits(),
			concurry.WithConfig(map[string]any{
				httplimit.ConfigBaseURL: upstream.URL,
				httplimit.ConfigHeaders: map[string]string{"Authorization": "Bearer " + key},
			}))
		if err != nil {
			panic(err)
		}
		return ls
	}
	pool, err := concurry.NewLimitPool([]*concurry.LimitSet{account("sk-1"), account("sk-2")})
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: &httplimit.Transport{Limiter: pool, API: httplimit.OpenAI{}}}
	for range 2 {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://llm/v1/chat/completions",
			strings.NewReader(`{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`))
		resp, err := client.Do(req)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(string(body[strings.Index(string(body), `"auth"`):]))
	}
	st, _ := pool.At(0).Stats(context.Background())
	tokens, _ := st.Limit(httplimit.KeyTokens)
	fmt.Println("account 1 tokens used:", tokens.Granted-tokens.Refunded)
	// Output:
	// "auth":"Bearer sk-1"}
	// "auth":"Bearer sk-2"}
	// account 1 tokens used: 42
}
