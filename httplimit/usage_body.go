package httplimit

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/concurry/concurry"
)

// maxUsageBody is how much of a non-streaming body is kept to read its
// usage from; a larger body settles as acquired.
const maxUsageBody = 4 << 20

// usageBody is a response body that watches what the caller reads for the
// usage the response reports, and settles the acquisition when it is closed
// (or read to its end).
type usageBody struct {
	rc     io.ReadCloser
	acq    *concurry.Acquisition
	api    API
	cost   concurry.Amounts // what acq was granted: every key of it
	stream bool
	f      *flights // counts the unused units settled

	mu      sync.Mutex
	settled bool             // guarded by mu
	buf     []byte           // guarded by mu; a JSON body, or a stream's partial line
	event   string           // guarded by mu; the current event's name
	data    []byte           // guarded by mu; the current event's data
	usage   concurry.Amounts // guarded by mu; a stream's usage so far, made at its first event
	found   bool             // guarded by mu
}

// init makes b the body of resp, for which acq granted cost.
func (b *usageBody) init(resp *http.Response, acq *concurry.Acquisition, cost concurry.Amounts, api API, f *flights) {
	b.rc, b.acq, b.cost, b.api, b.f = resp.Body, acq, cost, api, f
	b.stream = isEventStream(resp.Header)
	if n := resp.ContentLength; !b.stream && n > 0 && n <= maxUsageBody {
		b.buf = make([]byte, 0, n) // kept whole, in one buffer
	}
}

// isEventStream reports whether h's Content-Type is text/event-stream,
// parameters aside.
func isEventStream(h http.Header) bool {
	v := h["Content-Type"]
	if len(v) == 0 {
		return false
	}
	mt, _, _ := strings.Cut(v[0], ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}

func (b *usageBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.settled {
		return n, err
	}
	if b.stream {
		b.scan(p[:n])
	} else if len(b.buf)+n <= maxUsageBody {
		b.buf = append(b.buf, p[:n]...)
	} else {
		b.buf = nil
		b.settleLocked(false) // too large to parse: settle as acquired
	}
	if err == io.EOF {
		b.settleLocked(true)
	}
	return n, err
}

// Close closes the body and settles the acquisition, if reading did not.
func (b *usageBody) Close() error {
	err := b.rc.Close()
	b.mu.Lock()
	b.settleLocked(false)
	b.mu.Unlock()
	return err
}

// settleLocked reports the usage found and releases. atEOF says the whole
// body was read. Requires mu held.
func (b *usageBody) settleLocked(atEOF bool) {
	if b.settled {
		return
	}
	b.settled = true
	if b.stream {
		b.scan([]byte("\n\n")) // an event not followed by a blank line
	} else if atEOF {
		b.usage, b.found = b.api.Usage(b.buf)
	}
	b.buf, b.data = nil, nil
	if b.found {
		// What was used of each rate key the acquisition holds; what was
		// granted and not used is given back.
		var unused [4]flightUnits
		back := unused[:0]
		for k, n := range b.usage {
			if g := b.cost[k]; g > 0 && k != concurry.CallKey {
				back = append(back, flightUnits{k, g - n})
			} else {
				delete(b.usage, k)
			}
		}
		// A holding lost before the body was read still records the
		// usage (Update says so with ErrLeaseLost): what was not used is
		// given back all the same.
		if err := b.acq.Update(b.usage); err == nil || errors.Is(err, concurry.ErrLeaseLost) {
			b.f.giveBack(back)
		}
	}
	_ = b.acq.Release() // unreported keys count as acquired
}

// scan feeds p to the server-sent-events parser. Requires mu held.
func (b *usageBody) scan(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			b.buf = append(b.buf, p...)
			return
		}
		l := p[:i]
		if len(b.buf) > 0 {
			b.buf = append(b.buf, l...)
			l = b.buf
		}
		b.line(bytes.TrimSuffix(l, []byte("\r")))
		b.buf = b.buf[:0]
		p = p[i+1:]
	}
}

// line handles one line of an event stream. Requires mu held.
func (b *usageBody) line(l []byte) {
	switch {
	case len(l) == 0:
		if len(b.data) > 0 {
			if b.usage == nil {
				b.usage = concurry.Amounts{}
			}
			if b.api.StreamUsage(b.event, b.data, b.usage) {
				b.found = true
			}
		}
		b.event, b.data = "", b.data[:0]
	case bytes.HasPrefix(l, []byte("event:")):
		b.event = string(bytes.TrimSpace(l[len("event:"):]))
	case bytes.HasPrefix(l, []byte("data:")):
		d := bytes.TrimPrefix(l[len("data:"):], []byte(" "))
		if len(b.data) > 0 {
			b.data = append(b.data, '\n')
		}
		b.data = append(b.data, d...)
	}
}
