package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"
)

// api is one of the provider's HTTP APIs: how it reads a request, writes
// rate-limit headers, errors and answers.
type api interface {
	// parse decodes a request body; an error is a 400 with its message.
	parse(body []byte, o Options) (request, error)
	// writeLimits writes the rate-limit headers of s.
	writeLimits(h http.Header, s snapshot)
	// writeRequestID writes the header that names the request: "req_" and
	// the Server's sequence number of the request.
	writeRequestID(h http.Header, id string)
	// writeError writes an error response: its kind's status and the API's
	// error body.
	writeError(w http.ResponseWriter, e apiError)
	// answer writes the answer to an admitted call, streamed or not, and
	// spreads it over the call's latency.
	answer(ctx context.Context, w http.ResponseWriter, c *call)
}

// request is what the provider needs of a call, whatever its API.
type request struct {
	model        string
	prompt       texts // every text of the prompt
	maxOut       int64 // the most output tokens the call may produce
	stream       bool
	includeUsage bool // OpenAI chat streams: a final chunk with the usage
}

// errorKind is the kind of an error response.
type errorKind int

const (
	errInvalidRequest errorKind = iota
	errAuthentication
	errNotFound
	errMethod
	errTooLarge
	errRateLimit
	errRequestTooLarge // a call that exceeds a whole quota: 429, never worth a retry
	errInternal
)

// apiError is an error response.
type apiError struct {
	kind    errorKind
	message string
	quota   string // the quota that refused a call: a dimension name or DimConcurrency
}

// status returns the HTTP status of an error of kind k.
func (k errorKind) status() int {
	return [...]int{
		errInvalidRequest: http.StatusBadRequest, errAuthentication: http.StatusUnauthorized,
		errNotFound: http.StatusNotFound, errMethod: http.StatusMethodNotAllowed,
		errTooLarge: http.StatusRequestEntityTooLarge, errRateLimit: http.StatusTooManyRequests,
		errRequestTooLarge: http.StatusTooManyRequests, errInternal: http.StatusInternalServerError,
	}[k]
}

// call is one admitted call. Only its handler's goroutine uses it.
type call struct {
	id      string // the Server's sequence number of the request
	created time.Time
	req     request
	in      int64 // input tokens, by the provider's tokenizer
	gen     generation
	end     func() // ends the call in its account's accounting; nil once done
}

// done ends the call in its account's accounting, once: its unused output
// comes back and it no longer counts against the concurrency cap. An
// answer calls it when its output is complete, before it writes the last
// of the answer (a whole body, or a stream's final events), so a client
// that has read the answer finds the call ended; the handler calls it on
// return for a call cut off before.
func (c *call) done() {
	if c.end != nil {
		c.end()
		c.end = nil
	}
}

// waitFor sleeps until a fraction part/whole of the call's latency has
// passed since it was created, or ctx ends; it reports whether the time
// came.
func (c *call) waitFor(ctx context.Context, part, whole int) bool {
	d := time.Until(c.created.Add(c.gen.latency * time.Duration(part) / time.Duration(whole))) // ≤ 1h × 2^17: no overflow
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// finishReason reports whether the call stopped at its maximum.
func (c *call) truncated() bool { return c.gen.out() >= c.req.maxOut }

// serveCall serves one call of a to acct: reads and parses the request,
// admits it by acct's quotas or answers 429, and answers it. Every response
// carries acct's rate-limit headers.
func (s *Server) serveCall(w http.ResponseWriter, r *http.Request, a api, acct *account) {
	id := strconv.FormatUint(s.ids.Add(1), 10)
	a.writeRequestID(w.Header(), id)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxRequestBytes))
	if err != nil {
		a.writeLimits(w.Header(), acct.peek(time.Now()))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.writeError(w, apiError{kind: errTooLarge, message: fmt.Sprintf("request body over %d bytes", tooBig.Limit)})
		} else {
			a.writeError(w, apiError{kind: errInvalidRequest, message: "cannot read the request body: " + err.Error()})
		}
		return
	}
	req, err := a.parse(body, s.opts)
	if err != nil {
		a.writeLimits(w.Header(), acct.peek(time.Now()))
		a.writeError(w, apiError{kind: errInvalidRequest, message: err.Error()})
		return
	}
	in, err := countTokens(s.opts.CountTokens, req.prompt)
	if err != nil {
		a.writeLimits(w.Header(), acct.peek(time.Now()))
		a.writeError(w, apiError{kind: errInternal, message: err.Error()})
		return
	}
	now := time.Now()
	snap, ref := acct.admit(now, callCost(in, req.maxOut))
	a.writeLimits(w.Header(), snap)
	if ref != nil {
		writeRefusal(w, a, acct, ref)
		return
	}
	c := &call{id: id, created: now, req: req, in: in, gen: s.opts.generate(body, req.maxOut)}
	c.end = func() { acct.finish(time.Now(), in, req.maxOut, c.gen.out()) }
	defer c.done()
	a.answer(r.Context(), w, c)
}

// countTokens returns the tokens of prompt by count, the user's callback:
// it runs in a goroutine of its own, so that a panic or runtime.Goexit in
// it becomes an error wrapping ErrTokenizerFailed. A negative count is 0.
func countTokens(count func(string) int64, prompt texts) (n int64, err error) {
	done := make(chan struct{})
	returned := false
	go func() {
		defer close(done)
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("%w: panic: %v", ErrTokenizerFailed, v)
			}
		}()
		n = prompt.count(count)
		returned = true
	}()
	<-done
	if !returned && err == nil {
		err = fmt.Errorf("%w: runtime.Goexit", ErrTokenizerFailed)
	}
	return n, err
}

// writeRefusal writes a 429 for ref: Retry-After in whole seconds and
// Retry-After-Ms, both rounded up; for a call larger than a whole quota,
// x-should-retry: false instead, which the SDKs honour.
func writeRefusal(w http.ResponseWriter, a api, acct *account, ref *refusal) {
	if ref.tooLarge {
		w.Header().Set("X-Should-Retry", "false")
		a.writeError(w, apiError{kind: errRequestTooLarge, message: ref.message(acct), quota: ref.dim})
		return
	}
	w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(ref.retryAfter.Seconds())), 10))
	w.Header().Set("Retry-After-Ms", strconv.FormatInt(ceilMilliseconds(ref.retryAfter), 10))
	a.writeError(w, apiError{kind: errRateLimit, message: ref.message(acct), quota: ref.dim})
}

// ceilMilliseconds returns d in whole milliseconds, rounded up.
func ceilMilliseconds(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond > 0 {
		ms++
	}
	return ms
}

// message says why a call was refused, the way the providers say it.
func (r *refusal) message(acct *account) string {
	where := fmt.Sprintf("account %s in region %s", acct.name, acct.region)
	if r.dim == DimConcurrency {
		return fmt.Sprintf("Too many concurrent requests on %s: Limit %d. Please try again in %v.", where, r.limit, r.retryAfter)
	}
	what := map[string]string{
		"requests": "requests per min (RPM)", "input_tokens": "input tokens per min",
		"output_tokens": "output tokens per min", "tokens": "tokens per min (TPM)",
	}[r.dim]
	if r.tooLarge {
		return fmt.Sprintf("Request too large for %s on %s: Limit %d, Requested %d. The input or output tokens must be reduced in order to run successfully.",
			what, where, r.limit, r.requested)
	}
	return fmt.Sprintf("Rate limit reached for %s on %s: Limit %d, Requested %d. Please try again in %v.",
		what, where, r.limit, r.requested, roundUpMilliseconds(r.retryAfter))
}

// roundUpMilliseconds rounds d up to a whole millisecond.
func roundUpMilliseconds(d time.Duration) time.Duration {
	return time.Duration(ceilMilliseconds(d)) * time.Millisecond
}

// writeJSON writes v as the JSON body of a response of status. A client
// gone before it is written is no error of the provider's.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// maxTokens returns the first of the maxima that is set, or the model's
// largest output; an error when that is not in [1, MaxOutputTokens].
func maxTokens(o Options, field string, maxima ...*int64) (int64, error) {
	n := o.MaxOutputTokens
	for _, m := range maxima {
		if m != nil {
			n = *m
			break
		}
	}
	if n < 1 || n > o.MaxOutputTokens {
		return 0, fmt.Errorf("%s: %d is out of range: want 1 to %d", field, n, o.MaxOutputTokens)
	}
	return n, nil
}
