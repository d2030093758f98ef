package unixsock

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// errSlowPeer reports a peer that let more than an frameWriter's limit of frames
// pile up unread.
var errSlowPeer = errors.New("concurry: peer does not read its frames")

// frameWriter combines the frames of many goroutines into few writes: a sender
// appends its frame and, when no one is writing, writes everything pending
// itself, so a lone request costs one write and concurrent ones share writes.
// It is safe for concurrent use.
type frameWriter struct {
	c       net.Conn
	timeout time.Duration // per write; 0 for none
	limit   int           // bytes that may be pending

	mu       sync.Mutex
	buf      []byte // guarded by mu; frames not yet written
	spare    []byte // owned by the writing goroutine
	deadline int64  // owned by the writing goroutine: Unix ns the write deadline is set to
	flushing bool   // guarded by mu
	err      error  // guarded by mu; the first failure, final
}

// send appends m and writes unless another sender is already writing. On a
// failure the connection is closed, so its reader sees the end too.
func (o *frameWriter) send(m *wire.Msg) error {
	o.mu.Lock()
	if o.err != nil {
		err := o.err
		o.mu.Unlock()
		return err
	}
	o.buf = m.Append(o.buf)
	if len(o.buf) > o.limit {
		o.err, o.buf = errSlowPeer, nil
		o.mu.Unlock()
		o.c.Close()
		return errSlowPeer
	}
	if o.flushing {
		o.mu.Unlock()
		return nil
	}
	o.flushing = true
	err := o.flushLocked()
	o.flushing = false
	o.mu.Unlock()
	if err != nil {
		o.c.Close()
	}
	return err
}

// flushLocked writes until nothing is pending, releasing mu during each
// write. Requires mu held and flushing set.
func (o *frameWriter) flushLocked() error {
	for len(o.buf) > 0 {
		b := o.buf
		o.buf, o.spare = o.spare[:0], nil
		o.mu.Unlock()
		err := o.armDeadline()
		if err == nil {
			_, err = o.c.Write(b)
		}
		o.mu.Lock()
		o.spare = b[:0]
		if err != nil {
			o.err, o.buf = err, nil
			return err
		}
	}
	return nil
}

// armDeadline keeps the write deadline between timeout/2 and timeout ahead,
// moving it only when it has come within timeout/2, so that a stream of
// writes does not reset a timer each time.
func (o *frameWriter) armDeadline() error {
	if o.timeout <= 0 {
		return nil
	}
	now := time.Now()
	if o.deadline-now.UnixNano() > int64(o.timeout/2) {
		return nil
	}
	d := now.Add(o.timeout)
	o.deadline = d.UnixNano()
	return o.c.SetWriteDeadline(d)
}

// fail makes every later send fail with err.
func (o *frameWriter) fail(err error) {
	o.mu.Lock()
	if o.err == nil {
		o.err = err
	}
	o.mu.Unlock()
}

// failure returns the error that ended the writer, nil while it works.
func (o *frameWriter) failure() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}
