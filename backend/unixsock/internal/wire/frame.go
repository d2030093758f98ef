package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Reader splits a byte stream into frame bodies. A Reader is not safe for
// concurrent use.
type Reader struct {
	r     *bufio.Reader
	limit int
	buf   []byte
	hdr   [4]byte
}

// NewReader returns a Reader of r that refuses frames longer than limit
// bytes (DefaultLimit when limit ≤ 0).
func NewReader(r io.Reader, limit int) *Reader {
	if limit <= 0 {
		limit = DefaultLimit
	}
	return &Reader{r: bufio.NewReaderSize(r, 16<<10), limit: limit}
}

// Next returns the body of the next frame (op, id and payload). The slice is
// valid until the next call. It returns io.EOF at a clean end of stream,
// io.ErrUnexpectedEOF for a truncated frame, and an error wrapping
// ErrMalformed for a length out of range.
func (r *Reader) Next() ([]byte, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(r.hdr[:])
	if n < HeaderSize-4 || n > uint32(r.limit) {
		return nil, fmt.Errorf("%w: frame length %d outside [%d, %d]", ErrMalformed, n, HeaderSize-4, r.limit)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	body := r.buf[:n]
	if _, err := io.ReadFull(r.r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}

// Buffered reports how many bytes can be read without blocking.
func (r *Reader) Buffered() int { return r.r.Buffered() }
