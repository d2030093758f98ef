package provider

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Transport returns an http.RoundTripper that serves each request with the
// Server's handler in a goroutine of its own, with no socket: the response
// body is a pipe the handler writes into as the client reads, so a stream
// arrives chunk by chunk. Its requests may name any host: the host's first
// label can name a region. Inside a testing/synctest bubble, with the
// Server made there, every wait is on the bubble's fake clock, and a run is
// exact.
//
// A request's context is its handler's: ending it, or closing the response
// body, ends the call. After Close, RoundTrip fails with ErrClosed. A
// handler that panics before it answered makes RoundTrip fail with
// ErrHandlerPanic; after, the body read fails with it. Safe for concurrent
// use.
func (s *Server) Transport() http.RoundTripper { return memoryTransport{s, s.serve} }

// memoryTransport serves its requests with handler, counted among s's
// handlers.
type memoryTransport struct {
	s       *Server
	handler http.HandlerFunc
}

// RoundTrip serves req and returns once the handler has written the
// response headers, or req's context ends.
func (t memoryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.s.enter() {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(req.Context())
	stopAbort := context.AfterFunc(t.s.ctx, cancel)
	pr, pw := io.Pipe()
	stopCut := context.AfterFunc(ctx, func() { pr.CloseWithError(context.Cause(ctx)) })
	w := &memoryWriter{header: http.Header{}, body: pw, ready: make(chan struct{})}
	go func() {
		defer t.s.active.Done()
		defer func() {
			var err error
			if v := recover(); v != nil {
				err = fmt.Errorf("%w: %v", ErrHandlerPanic, v)
			}
			// A context ended from now on must not cut a body already
			// written; one that ended before (stopCut finds the cut
			// started), or a Close that cut the calls off (its abort
			// reaches ctx a moment later), ended the call early, and the
			// body must say so even if the handler returned before the
			// cut closed the pipe: else the reader would see a clean end.
			cut := !stopCut()
			switch {
			case err != nil:
			case cut:
				err = context.Cause(ctx)
			case t.s.ctx.Err() != nil:
				err = context.Cause(t.s.ctx)
			}
			w.end(err)
			stopAbort()
			cancel()
			if req.Body != nil {
				_ = req.Body.Close()
			}
		}()
		t.handler(w, serverRequest(req, ctx))
	}()
	select {
	case <-w.ready:
		if w.err != nil {
			return nil, w.err
		}
		return &http.Response{
			Status: fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)), StatusCode: w.status,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: w.sent, ContentLength: -1,
			Body: &memoryBody{r: pr, cancel: cancel}, Request: req,
		}, nil
	case <-ctx.Done():
		if err := req.Context().Err(); err != nil {
			return nil, err
		}
		return nil, ErrClosed
	}
}

// serverRequest returns req as a server receives it, under ctx.
func serverRequest(req *http.Request, ctx context.Context) *http.Request {
	r := req.Clone(ctx)
	r.RequestURI = req.URL.RequestURI()
	r.RemoteAddr = "memory"
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	if r.Host == "" {
		r.Host = req.URL.Host
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	return r
}

// memoryWriter is the handler's side of a memoryTransport call. Only the
// handler's goroutine uses it until ready is closed; RoundTrip reads
// status, sent and err after.
type memoryWriter struct {
	header    http.Header
	committed bool
	status    int
	sent      http.Header // the header as it was committed
	err       error       // the handler panicked before it answered
	body      *io.PipeWriter
	ready     chan struct{} // closed when the header is committed, or err set
}

func (w *memoryWriter) Header() http.Header { return w.header }

func (w *memoryWriter) WriteHeader(code int) {
	if w.committed || code < 200 {
		return
	}
	w.committed, w.status, w.sent = true, code, w.header.Clone()
	close(w.ready)
}

func (w *memoryWriter) Write(b []byte) (int, error) {
	if !w.committed {
		if w.header.Get("Content-Type") == "" {
			w.header.Set("Content-Type", http.DetectContentType(b))
		}
		w.WriteHeader(http.StatusOK)
	}
	return w.body.Write(b)
}

// Flush commits the header; the body needs no flushing: the pipe hands
// each write to the reader.
func (w *memoryWriter) Flush() { w.WriteHeader(http.StatusOK) }

// end finishes the response when the handler returns: a handler that wrote
// nothing answered 200; err (a panic) fails RoundTrip, or the body's reads.
func (w *memoryWriter) end(err error) {
	if !w.committed && err != nil {
		w.committed, w.err = true, err
		close(w.ready)
	}
	w.WriteHeader(http.StatusOK)
	_ = w.body.CloseWithError(err) // nil: the reader sees io.EOF
}

// memoryBody is a response body: the reading end of the handler's pipe.
// Closing it ends the call.
type memoryBody struct {
	r      *io.PipeReader
	cancel context.CancelFunc
}

func (b *memoryBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *memoryBody) Close() error {
	err := b.r.Close()
	b.cancel()
	return err
}
