package unixsock

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
	"github.com/concurry/concurry/internal/testutil"
)

func rawConn(t *testing.T, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func writeMsg(t testing.TB, c net.Conn, m wire.Msg) {
	t.Helper()
	if _, err := c.Write(m.Append(nil)); err != nil {
		t.Fatal(err)
	}
}

// rawHello says hello on c and checks the answer.
func rawHello(t testing.TB, c net.Conn) {
	t.Helper()
	writeMsg(t, c, wire.Msg{Op: wire.OpHello, ID: 1, Version: wire.Version})
	if m := readMsg(t, c); m.Op != wire.OpHelloOK {
		t.Fatalf("hello answered with %v %q", m.Op, m.Text)
	}
}

func readMsg(t testing.TB, c net.Conn) wire.Msg {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	body, err := wire.NewReader(c, 0).Next()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m wire.Msg
	if err := m.Decode(body); err != nil {
		t.Fatal(err)
	}
	return m
}

// wantClosed fails unless the server closes c within a few seconds; frames
// it sends before (such as an Error) are skipped.
func wantClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept the connection open")
	}
}

// goodCycle checks that a well-behaved client is served.
func goodCycle(t *testing.T, ls *concurry.LimitSet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := ls.Acquire(ctx, nil)
	if err != nil {
		t.Fatalf("a good client was not served: %v", err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
}

func goodSet(t *testing.T, path string) *concurry.LimitSet {
	t.Helper()
	c := dial(t, path, Options{DisableAutoHost: true})
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}},
		concurry.WithName("good"), concurry.WithBackend(c))
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// TestServerSurvivesAbuse sends broken input on one connection at a time:
// that connection is closed, and a good client is served throughout.
func TestServerSurvivesAbuse(t *testing.T) {
	var log testutil.SyncBuffer
	srv := startServer(t, ServerOptions{HelloTimeout: 200 * time.Millisecond, MaxFrame: 1 << 10,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	ls := goodSet(t, srv.Path())
	held, err := ls.Acquire(context.Background(), nil) // a holding the good client keeps throughout
	if err != nil {
		t.Fatal(err)
	}
	open := wire.Msg{Op: wire.OpOpen, ID: 2, Name: "x", Specs: []backend.Spec{{Key: "k", Kind: backend.Resource, Capacity: 1}}}
	cases := map[string]func(c net.Conn){
		"garbage":        func(c net.Conn) { c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) },
		"oversized":      func(c net.Conn) { c.Write(binary.BigEndian.AppendUint32(nil, 1<<30)) },
		"undersized":     func(c net.Conn) { c.Write([]byte{0, 0, 0, 2, 1, 1}) },
		"silent":         func(net.Conn) {},
		"wrong first op": func(c net.Conn) { writeMsg(t, c, open) },
		"hello no magic": func(c net.Conn) { c.Write([]byte{0, 0, 0, 14, 1, 0, 0, 0, 0, 0, 0, 0, 1, 'X', 'X', 'X', 'X', 1}) },
		"truncated":      func(c net.Conn) { rawHello(t, c); c.Write(open.Append(nil)[:12]); c.(*net.UnixConn).CloseWrite() },
		"unknown op":     func(c net.Conn) { rawHello(t, c); c.Write([]byte{0, 0, 0, 9, 0x42, 0, 0, 0, 0, 0, 0, 0, 1}) },
		"reply op":       func(c net.Conn) { rawHello(t, c); writeMsg(t, c, wire.Msg{Op: wire.OpGranted, ID: 3}) },
		"second hello": func(c net.Conn) {
			rawHello(t, c)
			writeMsg(t, c, wire.Msg{Op: wire.OpHello, ID: 3, Version: wire.Version})
		},
		"unknown set": func(c net.Conn) { rawHello(t, c); writeMsg(t, c, wire.Msg{Op: wire.OpStats, ID: 3, SetID: 9}) },
		"bad amounts": func(c net.Conn) {
			openRaw(t, c, open)
			writeMsg(t, c, wire.Msg{Op: wire.OpAcquire, ID: 4, SetID: 1, Values: []int64{5}})
		},
		"amounts length": func(c net.Conn) {
			openRaw(t, c, open)
			writeMsg(t, c, wire.Msg{Op: wire.OpAcquire, ID: 4, SetID: 1, Values: []int64{1, 1}})
		},
		"negative amount": func(c net.Conn) {
			openRaw(t, c, open)
			writeMsg(t, c, wire.Msg{Op: wire.OpAcquire, ID: 4, SetID: 1, Values: []int64{-1}})
		},
		"duplicate waiter": func(c net.Conn) { duplicateWaiter(t, c) },
	}
	for name, abuse := range cases {
		t.Run(name, func(t *testing.T) {
			c := rawConn(t, srv.Path())
			abuse(c)
			goodCycleOther(t, srv.Path()) // served while the bad connection is still open
			wantClosed(t, c)
		})
	}
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	goodCycle(t, ls)
	for _, reason := range []string{"frame length", "unknown op", "unexpected Granted", "unknown set id", "already waiting", "outside [0, 1]", "no valid hello"} {
		if !strings.Contains(log.String(), reason) {
			t.Errorf("the server log gives no reason %q:\n%s", reason, log.String())
		}
	}
}

// goodCycleOther runs a cycle from a fresh client on another set.
func goodCycleOther(t *testing.T, path string) {
	t.Helper()
	c := dial(t, path, Options{DisableAutoHost: true})
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}},
		concurry.WithName("other"), concurry.WithBackend(c))
	if err != nil {
		t.Fatal(err)
	}
	goodCycle(t, ls)
}

func openRaw(t *testing.T, c net.Conn, open wire.Msg) {
	t.Helper()
	rawHello(t, c)
	writeMsg(t, c, open)
	if m := readMsg(t, c); m.Op != wire.OpOpened || m.SetID != 1 {
		t.Fatalf("open answered with %v %q", m.Op, m.Text)
	}
}

// duplicateWaiter makes two waiting acquisitions with one request id.
func duplicateWaiter(t *testing.T, c net.Conn) {
	openRaw(t, c, wire.Msg{Op: wire.OpOpen, ID: 2, Name: "dup", Specs: []backend.Spec{{Key: "k", Kind: backend.Resource, Capacity: 1}}})
	writeMsg(t, c, wire.Msg{Op: wire.OpAcquire, ID: 3, SetID: 1, Values: []int64{1}})
	if m := readMsg(t, c); m.Op != wire.OpGranted {
		t.Fatalf("acquire answered with %v", m.Op)
	}
	writeMsg(t, c, wire.Msg{Op: wire.OpAcquire, ID: 4, SetID: 1, Flags: wire.FlagWait, Values: []int64{1}})
	writeMsg(t, c, wire.Msg{Op: wire.OpAcquire, ID: 4, SetID: 1, Flags: wire.FlagWait, Values: []int64{1}})
}

// TestVersionMismatch: a client of another version is told so by the
// server, and this client reports a server of another version clearly.
func TestVersionMismatch(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c := rawConn(t, srv.Path())
	writeMsg(t, c, wire.Msg{Op: wire.OpHello, ID: 1, Version: 99})
	if m := readMsg(t, c); m.Op != wire.OpError || m.Code != wire.CodeVersion || !strings.Contains(m.Text, "99") {
		t.Fatalf("got %v %d %q, want a version error", m.Op, m.Code, m.Text)
	}
	wantClosed(t, c)

	cl := dial(t, mute(t, 7), Options{DisableAutoHost: true})
	_, err := cl.Open(context.Background(), "x", []backend.Spec{{Key: "k", Kind: backend.Resource, Capacity: 1}})
	if !errors.Is(err, ErrVersionMismatch) || !errors.Is(err, backend.ErrBackendUnavailable) {
		t.Fatalf("got %v, want ErrVersionMismatch and ErrBackendUnavailable", err)
	}
}

// TestSlowClient: a client that never reads its replies is dropped after
// WriteTimeout, and never holds up a good client.
func TestSlowClient(t *testing.T) {
	var log testutil.SyncBuffer
	srv := startServer(t, ServerOptions{WriteTimeout: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	ls := goodSet(t, srv.Path())
	c := rawConn(t, srv.Path())
	openRaw(t, c, wire.Msg{Op: wire.OpOpen, ID: 2, Name: "slow", Specs: []backend.Spec{{Key: "k", Kind: backend.Resource, Capacity: 1}}})
	flood := make(chan struct{})
	go func() {
		defer close(flood)
		var buf []byte
		for i := range 200_000 {
			buf = (&wire.Msg{Op: wire.OpStats, ID: uint64(10 + i), SetID: 1}).Append(buf[:0])
			if _, err := c.Write(buf); err != nil {
				return // the server gave up on us
			}
		}
	}()
	for range 200 {
		goodCycle(t, ls)
	}
	select {
	case <-flood:
	case <-time.After(10 * time.Second):
		t.Fatal("the server never dropped a client that does not read")
	}
	goodCycle(t, ls)
	eventually(t, "the drop is a warning", func() error {
		if !strings.Contains(log.String(), `level=WARN msg="dropping a client that does not read its replies"`) {
			return errors.New(log.String())
		}
		return nil
	})
}

// TestOtherUID runs a child as another user: refused by default with a
// clear error, admitted when AllowUIDs names it.
func TestOtherUID(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root; this test needs root to run a child as another user")
		}
		t.Skip("needs root to run a child as another user")
	}
	const nobody = 65534
	exe := exeForAll(t)
	for _, allow := range []bool{false, true} {
		opts := ServerOptions{Mode: 0o666}
		if allow {
			opts.AllowUIDs = []int{nobody}
		}
		srv := startServer(t, opts)
		os.Chmod(filepath.Dir(srv.Path()), 0o755)
		attr := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		kid := startChild(t, exe, "dial", attr, "CQ_SOCK="+srv.Path(), "CQ_NOHOST=1", "HOME=/")
		out := kid.expect(t, "DIAL ", 10*time.Second)
		if want := "denied=true unavailable=true"; !allow && !strings.HasPrefix(out, want) {
			t.Fatalf("other uid: %s, want %s", out, want)
		}
		if allow && !strings.Contains(out, "err=<nil>") {
			t.Fatalf("allowed uid: %s", out)
		}
		goodCycleOther(t, srv.Path())
	}
}

// exeForAll copies the test binary where any user may run it.
func exeForAll(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cqexe")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	exe := filepath.Join(dir, "unixsock.test")
	if out, err := exec.Command("cp", os.Args[0], exe).CombinedOutput(); err != nil {
		t.Fatalf("copy test binary: %v %s", err, out)
	}
	return exe
}

// TestRequestAfterCloseSet: a request that crosses its set's CloseSet is
// answered with ErrClosed, and the connection (with its holdings) lives on.
func TestRequestAfterCloseSet(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c := rawConn(t, srv.Path())
	openRaw(t, c, wire.Msg{Op: wire.OpOpen, ID: 2, Name: "x", Specs: []backend.Spec{{Key: "k", Kind: backend.Resource, Capacity: 1}}})
	writeMsg(t, c, wire.Msg{Op: wire.OpCloseSet, ID: 3, SetID: 1})
	if m := readMsg(t, c); m.Op != wire.OpSetClosed {
		t.Fatalf("CloseSet answered with %v", m.Op)
	}
	for _, m := range []wire.Msg{
		{Op: wire.OpAcquire, ID: 4, SetID: 1, Values: []int64{1}},
		{Op: wire.OpStats, ID: 5, SetID: 1},
		{Op: wire.OpCloseSet, ID: 6, SetID: 1},
	} {
		writeMsg(t, c, m)
		if r := readMsg(t, c); r.Op != wire.OpError || r.Code != wire.CodeClosed || r.ID != m.ID {
			t.Fatalf("%v on a closed set answered with %v %d %q", m.Op, r.Op, r.Code, r.Text)
		}
	}
	writeMsg(t, c, wire.Msg{Op: wire.OpStats, ID: 7, SetID: 2}) // never opened
	wantClosed(t, c)
}
