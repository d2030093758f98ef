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

// lazyLimit is how many bytes of lazy frames a frameWriter keeps before it
// writes them without waiting for another frame.
const lazyLimit = 4 << 10

// frameWriter combines the frames of many goroutines into few writes: a sender
// appends its frame and, when no one is writing, writes everything pending
// itself, so a lone request costs one write and concurrent ones share writes.
// A lazy frame (one that no one waits for and that changes nothing another
// process could see) is only appended: it goes out with the next frame sent,
// at the next flush, or once lazyLimit bytes have piled up. It is safe for
// concurrent use.
type frameWriter struct {
	c       net.Conn
	timeout time.Duration // per write; 0 for none
	limit   int           // bytes that may be pending
	// onDrop, when not nil, is called outside mu with the frames a failure
	// dropped unwritten (a batch whose write failed may be in part written).
	onDrop func(frames []byte)

	mu       sync.Mutex
	cond     sync.Cond // on mu: signalled when a batch is written or the writer fails
	buf      []byte    // guarded by mu; frames not yet written
	spare    []byte    // owned by the writing goroutine
	deadline int64     // owned by the writing goroutine: Unix ns the write deadline is set to
	flushing bool      // guarded by mu
	started  uint64    // guarded by mu; batches taken for writing
	written  uint64    // guarded by mu; batches written
	waiting  int       // guarded by mu; senders waiting for their batch
	err      error     // guarded by mu; the first failure, final
}

// init readies o to write to c: each write may block for timeout (0: no
// limit), limit bytes may be pending, and onDrop, when not nil, hears of
// frames a failure dropped.
func (o *frameWriter) init(c net.Conn, timeout time.Duration, limit int, onDrop func([]byte)) {
	o.c, o.timeout, o.limit, o.onDrop = c, timeout, limit, onDrop
	o.cond.L = &o.mu
}

// send appends m and writes unless another sender is already writing (which
// then writes m too). On a failure the connection is closed, so its reader
// sees the end too.
func (o *frameWriter) send(m *wire.Msg) error { return o.put(m, false, false) }

// sendLazy appends m to be written with the next frame sent or flush.
func (o *frameWriter) sendLazy(m *wire.Msg) error { return o.put(m, true, false) }

// sendWait is send that returns only once m is written: the error of the
// write that carried it, or of the failure that dropped it.
func (o *frameWriter) sendWait(m *wire.Msg) error { return o.put(m, false, true) }

// flush writes whatever is pending (lazy frames) unless a write is under way.
func (o *frameWriter) flush() error {
	o.mu.Lock()
	if o.err != nil || len(o.buf) == 0 || o.flushing {
		err := o.err
		o.mu.Unlock()
		return err
	}
	return o.flushAndUnlock()
}

// put appends m and writes as send, sendLazy and sendWait say.
func (o *frameWriter) put(m *wire.Msg, lazy, wait bool) error {
	o.mu.Lock()
	if o.err != nil {
		err := o.err
		o.mu.Unlock()
		return err
	}
	o.buf = m.Append(o.buf)
	switch {
	case len(o.buf) > o.limit:
		dropped := o.buf
		o.err, o.buf = errSlowPeer, nil
		o.cond.Broadcast()
		o.mu.Unlock()
		o.c.Close()
		o.drop(dropped)
		return errSlowPeer
	case o.flushing && wait:
		return o.waitAndUnlock(o.started + 1) // the writer's next batch carries m
	case o.flushing, lazy && len(o.buf) < lazyLimit:
		o.mu.Unlock()
		return nil
	}
	return o.flushAndUnlock()
}

// waitAndUnlock waits until batch number batch is written or the writer
// fails. Requires mu held; it unlocks.
func (o *frameWriter) waitAndUnlock(batch uint64) error {
	o.waiting++
	for o.written < batch && o.err == nil {
		o.cond.Wait()
	}
	o.waiting--
	var err error
	if o.written < batch {
		err = o.err
	}
	o.mu.Unlock()
	return err
}

// flushAndUnlock writes until nothing is pending, releasing mu during each
// write. Requires mu held and flushing clear; it unlocks.
func (o *frameWriter) flushAndUnlock() error {
	o.flushing = true
	for len(o.buf) > 0 {
		b := o.buf
		o.buf, o.spare = o.spare[:0], nil
		o.started++
		o.mu.Unlock()
		err := o.armDeadline()
		if err == nil {
			_, err = o.c.Write(b)
		}
		o.mu.Lock()
		if err != nil {
			dropped := append(b, o.buf...)
			o.err, o.buf, o.flushing = err, nil, false
			o.cond.Broadcast()
			o.mu.Unlock()
			o.c.Close()
			o.drop(dropped)
			return err
		}
		o.spare = b[:0]
		o.written = o.started
		if o.waiting > 0 {
			o.cond.Broadcast()
		}
	}
	o.flushing = false
	o.mu.Unlock()
	return nil
}

// drop hands frames a failure dropped to onDrop.
func (o *frameWriter) drop(frames []byte) {
	if o.onDrop != nil && len(frames) > 0 {
		o.onDrop(frames)
	}
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

// fail makes every later send fail with err, and drops what is pending.
func (o *frameWriter) fail(err error) {
	o.mu.Lock()
	if o.err != nil {
		o.mu.Unlock()
		return
	}
	o.err = err
	dropped := o.buf
	o.buf = nil
	o.cond.Broadcast()
	o.mu.Unlock()
	o.drop(dropped)
}

// failure returns the error that ended the writer, nil while it works.
func (o *frameWriter) failure() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}
