package unixsock

import (
	"context"
	"fmt"
	"time"

	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// readTurn says who reads a connection: at most one goroutine at a time
// holds the turn. A caller awaiting its reply takes it when it is free and
// reads until its reply (or, for a waiting Acquire, the server's Queued
// notice) arrives, delivering the others' replies on the way; a caller that
// finds the turn held waits for its reply to be delivered. A holder that
// leaves while calls are outstanding hands the turn to the connection's
// background reader, which reads until none is. When the connection has
// been idle, the watchdog gives the background reader the turn to watch it,
// so that a connection that drops is noticed at once; the next request
// interrupts the watch. A holder is interrupted by a read deadline in the
// past, which wire.Reader survives without losing a byte. Guarded by its
// clientConn's mu.
type readTurn struct {
	held        bool   // a goroutine holds the turn, or it was given to the background reader
	background  bool   // the background reader holds it, or was given it
	watching    bool   // the background reader holds it with no call to read for
	gen         uint64 // turns taken and left, so that a late interrupt of an earlier holder does nothing
	interrupted bool   // the read deadline is in the past, to interrupt the holder
}

// turnResult is how readFor ended.
type turnResult uint8

const (
	turnNone     turnResult = iota // another goroutine reads: the call is delivered by it
	turnAnswered                   // the call was answered (its signal on ch is consumed)
	turnQueued                     // the server queued the waiting call (its signal is consumed)
	turnCtxDone                    // ctx ended; the call is still pending
	turnFailed                     // the connection failed: ch is signalled
)

// aLongTimeAgo is a read deadline that has passed: it interrupts a read.
var aLongTimeAgo = time.Unix(1, 0)

// readFor takes the read turn when it is free and reads until cl is
// answered (or queued, for a waiting call), the connection fails, or ctx
// ends; it then leaves the turn. It returns turnNone, reading nothing, when
// another goroutine holds the turn.
func (cc *clientConn) readFor(ctx context.Context, cl *call) turnResult {
	cc.mu.Lock()
	if cc.turn.held || cc.err != nil {
		cc.mu.Unlock()
		return turnNone
	}
	cc.turn.held = true
	cc.turn.gen++
	gen := cc.turn.gen
	cc.mu.Unlock()
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { cc.interrupt(gen) })
		defer stop()
	}
	for {
		select { // before reading: another reader may have delivered it
		case <-cl.ch:
			cc.leaveTurn()
			return turnAnswered
		case <-cl.queued:
			cc.leaveTurn()
			return turnQueued
		default:
		}
		err := cc.readOne()
		if err == nil {
			continue
		}
		if cc.dead.Load() {
			return turnFailed
		}
		cc.mu.Lock()
		cc.clearInterruptLocked()
		cc.mu.Unlock()
		if ctx.Err() != nil {
			cc.leaveTurn()
			return turnCtxDone
		}
	}
}

// readOne reads one frame and delivers it. An error is returned after the
// connection was failed with it, except an interrupt, after which reading
// can resume.
func (cc *clientConn) readOne() error {
	body, err := cc.r.Next()
	if err == nil {
		cc.lastRead.Store(time.Now().UnixNano())
		err = cc.in.Decode(body)
	}
	if err == nil && cc.in.ID == 0 && cc.in.Op == wire.OpError {
		err = fmt.Errorf("server closed the connection: %s", cc.in.Text)
	}
	if err == nil {
		cc.deliver(&cc.in)
		return nil
	}
	if isTimeout(err) {
		cc.mu.Lock()
		interrupted := cc.turn.interrupted
		cc.mu.Unlock()
		if interrupted {
			return err
		}
	}
	cc.fail(err)
	return err
}

// leaveTurn ends the caller's turn, handing it to the background reader
// while calls are outstanding.
func (cc *clientConn) leaveTurn() {
	cc.mu.Lock()
	cc.clearInterruptLocked()
	cc.turn.gen++
	pass := cc.err == nil && len(cc.calls) > 0
	cc.turn.held, cc.turn.background = pass, pass
	cc.mu.Unlock()
	if pass {
		cc.wakeBackground()
	}
}

// interrupt stops the read of the holder of turn gen, if it still holds it.
func (cc *clientConn) interrupt(gen uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.turn.held && !cc.turn.background && cc.turn.gen == gen {
		cc.interruptLocked()
	}
}

// interruptLocked sets the read deadline in the past. Requires mu held.
func (cc *clientConn) interruptLocked() {
	if !cc.turn.interrupted && cc.err == nil {
		cc.turn.interrupted = true
		_ = cc.c.SetReadDeadline(aLongTimeAgo) // fails only on a closed connection, whose reads fail anyway
	}
}

// clearInterruptLocked lifts the read deadline of an interrupt. Requires
// mu held.
func (cc *clientConn) clearInterruptLocked() {
	if cc.turn.interrupted {
		cc.turn.interrupted = false
		_ = cc.c.SetReadDeadline(time.Time{})
	}
}

// stopWatchLocked interrupts the background reader's watch: a call is
// coming, whose reply the background reader then delivers. Requires mu
// held.
func (cc *clientConn) stopWatchLocked() {
	if cc.turn.watching {
		cc.turn.watching = false
		cc.interruptLocked()
	}
}

// watch gives an idle connection's turn to the background reader, which
// then notices at once when the server closes the connection.
func (cc *clientConn) watch() {
	cc.mu.Lock()
	if cc.turn.held || cc.err != nil || len(cc.calls) > 0 {
		cc.mu.Unlock()
		return
	}
	cc.turn.held, cc.turn.background, cc.turn.watching = true, true, true
	cc.turn.gen++
	cc.mu.Unlock()
	cc.wakeBackground()
}

func (cc *clientConn) wakeBackground() {
	select {
	case cc.wake <- struct{}{}:
	default: // already woken
	}
}

// background is the connection's background reader: it reads with the turn
// it is given (see readTurn) until the connection ends.
func (cc *clientConn) background() {
	defer cc.cl.wg.Done()
	for !cc.dead.Load() {
		<-cc.wake
		cc.serveTurn()
	}
}

// serveTurn reads and delivers frames while the background reader holds
// the turn: while calls are outstanding or it watches. It then leaves the
// turn.
func (cc *clientConn) serveTurn() {
	for {
		cc.mu.Lock()
		if cc.err != nil || !cc.turn.background {
			cc.mu.Unlock()
			return
		}
		if len(cc.calls) == 0 && !cc.turn.watching {
			cc.clearInterruptLocked()
			cc.turn.held, cc.turn.background = false, false
			cc.turn.gen++
			cc.mu.Unlock()
			return
		}
		cc.mu.Unlock()
		if err := cc.readOne(); err != nil && !cc.dead.Load() {
			cc.mu.Lock()
			cc.clearInterruptLocked() // the watch was stopped
			cc.mu.Unlock()
		}
	}
}
