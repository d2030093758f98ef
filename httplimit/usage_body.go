package httplimit

import (
	"bytes"
	"io"
	"mime"
	"net/http"
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
	stream bool
	f      *flights // counts the unused units settled

	mu      sync.Mutex
	settled bool             // guarded by mu
	buf     bytes.Buffer     // guarded by mu; a JSON body, or a stream's partial line
	event   string           // guarded by mu; the current event's name
	data    []byte           // guarded by mu; the current event's data
	usage   concurry.Amounts // guarded by mu; a stream's usage so far
	found   bool             // guarded by mu
}

func newUsageBody(resp *http.Response, acq *concurry.Acquisition, api API, f *flights) io.ReadCloser {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return &usageBody{rc: resp.Body, acq: acq, api: api, stream: mt == "text/event-stream", f: f, usage: concurry.Amounts{}}
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
	} else if b.buf.Len()+n <= maxUsageBody {
		b.buf.Write(p[:n])
	} else {
		b.buf.Reset()
		b.stream = false
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
		b.usage, b.found = b.api.Usage(b.buf.Bytes())
		b.buf = bytes.Buffer{}
	}
	if b.found {
		held := make(concurry.Amounts, len(b.usage))
		unused := make(concurry.Amounts, len(b.usage))
		for k, n := range b.usage {
			if g := b.acq.Granted(k); g > 0 && k != concurry.CallKey {
				held[k], unused[k] = n, g-n
			}
		}
		if b.acq.Update(held) == nil {
			b.f.giveBack(unused)
		}
	}
	_ = b.acq.Release() // unreported keys count as acquired
}

// scan feeds p to the server-sent-events parser. Requires mu held.
func (b *usageBody) scan(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			b.buf.Write(p)
			return
		}
		b.buf.Write(p[:i])
		b.line(bytes.TrimSuffix(b.buf.Bytes(), []byte("\r")))
		b.buf.Reset()
		p = p[i+1:]
	}
}

// line handles one line of an event stream. Requires mu held.
func (b *usageBody) line(l []byte) {
	switch {
	case len(l) == 0:
		if len(b.data) > 0 && b.api.StreamUsage(b.event, b.data, b.usage) {
			b.found = true
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
