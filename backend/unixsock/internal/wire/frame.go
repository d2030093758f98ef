package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Deadliner is the part of a net.Conn a Reader with a frame timeout uses.
type Deadliner interface {
	SetReadDeadline(t time.Time) error
}

// BufferSize is the size of a Reader's buffer: a frame no longer than it is
// read whole into the buffer before Next consumes any of it, so that a read
// that fails midway (a deadline set to interrupt it) loses nothing and the
// next call resumes where it stopped.
const BufferSize = 16 << 10

// Reader splits a byte stream into frame bodies. A Reader is not safe for
// concurrent use.
type Reader struct {
	r     *bufio.Reader
	limit int
	buf   []byte

	conn    Deadliner     // set by SetFrameTimeout
	timeout time.Duration // set by SetFrameTimeout; 0 for none
	armed   bool          // a read deadline is set on conn
}

// NewReader returns a Reader of r that refuses frames longer than limit
// bytes (DefaultLimit when limit ≤ 0).
func NewReader(r io.Reader, limit int) *Reader {
	if limit <= 0 {
		limit = DefaultLimit
	}
	return &Reader{r: bufio.NewReaderSize(r, BufferSize), limit: limit}
}

// SetFrameTimeout bounds how long the rest of a frame may take to arrive
// once its first byte has: Next sets a read deadline on conn (the connection
// the Reader reads) timeout ahead whenever it must wait inside a frame, and
// clears it before waiting, for any time, for the next frame to begin. A
// frame that arrives whole costs no deadline. timeout ≤ 0 turns it off.
func (r *Reader) SetFrameTimeout(conn Deadliner, timeout time.Duration) {
	r.conn, r.timeout = conn, timeout
}

// Next returns the body of the next frame (op, id and payload). The slice is
// valid until the next call. It returns io.EOF at a clean end of stream,
// io.ErrUnexpectedEOF for a truncated frame, an error wrapping ErrMalformed
// for a length out of range, and the connection's error when a read fails
// (a timeout when a frame stalls past the frame timeout). After a failed
// read of a frame no longer than BufferSize, nothing is consumed: a later
// Next resumes.
func (r *Reader) Next() ([]byte, error) {
	if err := r.begin(); err != nil {
		return nil, err
	}
	hdr, err := r.r.Peek(4)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr)
	if n < HeaderSize-4 || n > uint32(r.limit) {
		return nil, fmt.Errorf("%w: frame length %d outside [%d, %d]", ErrMalformed, n, HeaderSize-4, r.limit)
	}
	size := 4 + int(n)
	if size <= r.r.Size() {
		frame, err := r.r.Peek(size)
		if err != nil {
			return nil, unexpected(err)
		}
		r.r.Discard(size) // cannot fail: the bytes are buffered; frame stays valid until the next read
		return frame[4:], nil
	}
	r.r.Discard(4)
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	body := r.buf[:n]
	if _, err := io.ReadFull(r.r, body); err != nil {
		return nil, unexpected(err)
	}
	return body, nil
}

// unexpected turns an end of stream inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// begin waits without a deadline for the next frame to start and, when the
// frame is not all buffered, gives the rest of it the frame timeout.
func (r *Reader) begin() error {
	if r.timeout <= 0 {
		return nil
	}
	if r.r.Buffered() == 0 {
		if r.armed {
			if err := r.conn.SetReadDeadline(time.Time{}); err != nil {
				return err
			}
			r.armed = false
		}
		if _, err := r.r.Peek(1); err != nil {
			return err
		}
	}
	if r.whole() {
		return nil
	}
	r.armed = true
	return r.conn.SetReadDeadline(time.Now().Add(r.timeout))
}

// whole reports whether the next frame is all in the buffer.
func (r *Reader) whole() bool {
	n := r.r.Buffered()
	if n < 4 {
		return false
	}
	hdr, _ := r.r.Peek(4)
	return uint64(n) >= 4+uint64(binary.BigEndian.Uint32(hdr))
}

// Ready reports whether the next frame is all in the buffer, so that Next
// returns it without reading the connection.
func (r *Reader) Ready() bool { return r.whole() }

// Buffered reports how many bytes can be read without blocking.
func (r *Reader) Buffered() int { return r.r.Buffered() }
