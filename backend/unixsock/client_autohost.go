package unixsock

import (
	"context"
	"errors"
	"time"
)

// hostAndDial is called when nothing listens at the path: it tries to become
// the server (Listen takes PATH.lock without waiting), and when another
// process holds the lock it waits for that process to start listening, up to
// Options.Timeout.
func (c *Client) hostAndDial(ctx context.Context) (*clientConn, error) {
	srv, err := Listen(c.path, c.opts.Server)
	switch {
	case err == nil:
		c.mu.Lock()
		old, closed := c.host, c.closed
		if !closed {
			c.host = srv
		}
		c.mu.Unlock()
		if closed {
			srv.Close()
			return nil, errClientClosed
		}
		if old != nil {
			old.Close() // a server of ours whose listener failed
		}
		c.log.Info("nothing listened at the socket; serving the limits from this process")
		return c.dial(ctx)
	case !errors.Is(err, ErrServerRunning):
		return nil, err
	}
	deadline := time.Now().Add(c.opts.Timeout)
	delay := time.Millisecond
	for {
		cc, err := c.dial(ctx)
		if err == nil || !noServer(err) || time.Now().After(deadline) {
			return cc, err
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-c.quit:
			t.Stop()
			return nil, errClientClosed
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}
