package httplimit

import (
	"net/http"
	"time"

	"github.com/concurry/concurry"
)

// API is what a [Transport] knows of the upstream's protocol: what a request
// will cost, what a response used, and what the upstream says of its own
// limits. [OpenAI] and [Anthropic] are ready-made; an API of your own needs
// these four methods. Its methods must be safe for concurrent use.
type API interface {
	// Cost returns the amounts a request asks for, from its method, URL,
	// headers and body (the whole body, already read). Keys the granting
	// set does not hold are dropped; an error fails the request.
	Cost(r *http.Request, body []byte) (concurry.Amounts, error)
	// Usage returns what a complete, non-streaming response body used, and
	// whether the body said: a map of its own, which the Transport may
	// change.
	Usage(body []byte) (concurry.Amounts, bool)
	// StreamUsage is called with each server-sent event of a streaming
	// response (its event name, "" when it has none, and its data). It adds
	// to u what the event reports and returns true when it reported usage.
	StreamUsage(event string, data []byte, u concurry.Amounts) bool
	// Limits reads the upstream's rate-limit headers of a response received
	// at now.
	Limits(h http.Header, now time.Time) []Remaining
}

// Remaining is one fact an upstream states about its limits: Key had
// Remaining units left when it answered, and is full again at Reset (zero
// when it did not say).
type Remaining struct {
	Key       string
	Remaining int64
	Reset     time.Time
}

// Config keys of a LimitSet (concurry.WithConfig) that a Transport reads to
// route a request to the endpoint of the set that granted it.
const (
	// ConfigBaseURL is a string URL, the endpoint of the set: its scheme
	// and host replace the request's, and its path, if any, is put before
	// the request's path. An SDK client made with the base URL
	// "http://llm/v1" sends /v1/chat/completions; a set whose base URL is
	// "https://eu.example.com/acct-2" routes it to
	// https://eu.example.com/acct-2/v1/chat/completions.
	ConfigBaseURL = "base_url"
	// ConfigHeaders is a map[string]string of headers set on the request,
	// replacing what it had: an account's API key ("Authorization":
	// "Bearer …", or "x-api-key"). A Transport reads both keys of a set
	// once, at its first request through the set: change neither map
	// afterwards.
	ConfigHeaders = "headers"
)
