package wire

import (
	"errors"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

// TestFrameTimeout: a connection may idle between frames for as long as it
// likes, but once a frame has begun the rest must follow within the frame
// timeout.
func TestFrameTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		r := NewReader(server, 0)
		r.SetFrameTimeout(server, time.Second)
		frame := (&Msg{Op: OpStats, ID: 1, SetID: 2}).Append(nil)
		go func() {
			time.Sleep(time.Hour) // idle: no timeout
			client.Write(frame)
			client.Write(frame[:5]) // half a frame, then nothing
		}()
		body, err := r.Next()
		if err != nil {
			t.Fatalf("a frame after an idle hour: %v", err)
		}
		var m Msg
		if err := m.Decode(body); err != nil || m.SetID != 2 {
			t.Fatalf("decoded %+v, %v", m, err)
		}
		start := time.Now()
		if _, err := r.Next(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a stalled frame: got %v, want a deadline error", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("the stalled frame failed after %v, want 1s", d)
		}
	})
}

// TestNextResumes: a read interrupted inside a frame (here by a deadline,
// as a client interrupts the goroutine reading for it) consumes nothing,
// and the next call returns the whole frame once the rest arrives.
func TestNextResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		r := NewReader(server, 0)
		frame := (&Msg{Op: OpGranted, ID: 7, Lease: 1 << 39}).Append(nil)
		go client.Write(frame[:6])
		server.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := r.Next(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("interrupted inside a frame: got %v, want a deadline error", err)
		}
		server.SetReadDeadline(time.Time{})
		go client.Write(frame[6:])
		body, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		var m Msg
		if err := m.Decode(body); err != nil || m.ID != 7 || m.Lease != 1<<39 {
			t.Fatalf("resumed frame decoded as %+v, %v", m, err)
		}
	})
}
