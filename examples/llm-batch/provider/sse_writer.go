package provider

import (
	"encoding/json"
	"net/http"
)

// sseWriter writes a stream of server-sent events, flushing each. After a
// write fails (the client went away) it writes nothing more.
type sseWriter struct {
	w   http.ResponseWriter
	err error
}

// startSSE writes the headers of an event stream with status 200.
func startSSE(w http.ResponseWriter) *sseWriter {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	return &sseWriter{w: w}
}

// event writes one event: an "event:" line when name is not empty, then
// v as one "data:" line.
func (s *sseWriter) event(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		s.err = err
		return
	}
	var b []byte
	if name != "" {
		b = append(append(append(b, "event: "...), name...), '\n')
	}
	s.raw(append(append(append(b, "data: "...), data...), "\n\n"...))
}

// raw writes b as it is, and flushes.
func (s *sseWriter) raw(b []byte) {
	if s.err != nil {
		return
	}
	if _, s.err = s.w.Write(b); s.err == nil {
		if f, ok := s.w.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// ok reports whether every write so far succeeded.
func (s *sseWriter) ok() bool { return s.err == nil }
