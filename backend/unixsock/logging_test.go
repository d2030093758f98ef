package unixsock

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/concurry/concurry/internal/testutil"
)

// TestLogLevels: a client that says hello and goes, or connects and goes
// without a word, is no warning for the server; the client logs the loss of
// its connection as a warning and its reconnection as news.
func TestLogLevels(t *testing.T) {
	var serverLog, clientLog testutil.SyncBuffer
	srv := startServer(t, ServerOptions{Logger: slog.New(slog.NewTextHandler(&serverLog, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true, Conns: 1, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&clientLog, nil))})
	if _, err := c.Open(context.Background(), "x", connSpecs); err != nil {
		t.Fatal(err)
	}
	rawConn(t, srv.Path()).Close() // no hello at all
	c.slots[0].conn.Load().fail(errors.New("dropped by the test"))
	eventually(t, "the client reconnects", func() error {
		_, err := c.Open(context.Background(), "x", connSpecs)
		return err
	})
	eventually(t, "the server sees both disconnections", func() error {
		if strings.Count(serverLog.String(), "client disconnected") < 1 ||
			!strings.Contains(serverLog.String(), "closed before its hello") {
			return errors.New(serverLog.String())
		}
		return nil
	})
	if strings.Contains(serverLog.String(), "level=WARN") {
		t.Errorf("clients that went away are warnings in the server's log:\n%s", serverLog.String())
	}
	for _, want := range []string{`level=WARN msg="connection to the limit server lost"`, `level=INFO msg="reconnected to the limit server"`} {
		if !strings.Contains(clientLog.String(), want) {
			t.Errorf("the client's log has no %s:\n%s", want, clientLog.String())
		}
	}
}
