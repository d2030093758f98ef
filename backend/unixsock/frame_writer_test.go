package unixsock

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// TestFrameWriterFailure: when a write fails, a sender waiting for its
// frame to be written gets the error, and every frame the failure dropped
// (the batch being written and those queued behind it) reaches onDrop;
// later sends fail at once.
func TestFrameWriterFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		local, remote := net.Pipe()
		defer local.Close()
		var mu sync.Mutex
		var dropped []byte
		var o frameWriter
		o.init(local, 0, 1<<20, func(b []byte) {
			mu.Lock()
			dropped = append(dropped, b...)
			mu.Unlock()
		})
		first := wire.Msg{Op: wire.OpStats, ID: 1, SetID: 1}
		second := wire.Msg{Op: wire.OpSettle, ID: releaseMark | 1, Lease: 2, Flags: wire.FlagFinal | wire.FlagQuiet, Values: []int64{5}}
		go o.send(&first) // blocks in its write: nobody reads the pipe
		synctest.Wait()
		waited := make(chan error, 1)
		go func() { waited <- o.sendWait(&second) }()
		synctest.Wait() // sendWait waits for the batch after the one being written
		remote.Close()
		if err := <-waited; err == nil {
			t.Fatal("sendWait returned nil for a frame the failure dropped")
		}
		want := second.Append(first.Append(nil))
		mu.Lock()
		defer mu.Unlock()
		if !bytes.Equal(dropped, want) {
			t.Fatalf("onDrop got %d bytes, want the %d of both frames", len(dropped), len(want))
		}
		if err := o.send(&first); err == nil {
			t.Fatal("a send after the failure succeeded")
		}
	})
}

// TestFrameWriterLazy: a lazy frame waits for the next frame sent and goes
// out in the same write, or for a flush.
func TestFrameWriterLazy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		local, remote := net.Pipe()
		defer local.Close()
		defer remote.Close()
		var o frameWriter
		o.init(local, 0, 1<<20, nil)
		lazy := wire.Msg{Op: wire.OpSettle, ID: releaseMark | 1, Lease: 2, Flags: wire.FlagFinal | wire.FlagQuiet}
		next := wire.Msg{Op: wire.OpStats, ID: 3, SetID: 1}
		got := make(chan []byte, 2)
		go func() {
			buf := make([]byte, 1024)
			for {
				n, err := remote.Read(buf)
				if err != nil {
					return
				}
				got <- bytes.Clone(buf[:n])
			}
		}()
		if err := o.sendLazy(&lazy); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if len(got) != 0 {
			t.Fatal("a lazy frame was written on its own")
		}
		go o.send(&next)
		if w := <-got; !bytes.Equal(w, next.Append(lazy.Append(nil))) {
			t.Fatalf("the next write carried %d bytes, want the lazy frame and the next one", len(w))
		}
		o.sendLazy(&lazy)
		go o.flush()
		if w := <-got; !bytes.Equal(w, lazy.Append(nil)) {
			t.Fatalf("a flush wrote %d bytes, want the lazy frame", len(w))
		}
	})
}
