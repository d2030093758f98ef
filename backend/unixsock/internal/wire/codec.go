package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed reports a frame that does not follow the protocol.
var ErrMalformed = errors.New("concurry: malformed frame")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
func getU64(b []byte) uint64              { return binary.BigEndian.Uint64(b) }

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
func appendVarint(b []byte, v int64) []byte   { return binary.AppendVarint(b, v) }

func appendString(b []byte, s string) []byte {
	return append(appendUvarint(b, uint64(len(s))), s...)
}

// decoder reads payload fields; the first error sticks and later reads
// return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = malformed(format, args...)
	}
	d.b = nil
}

func (d *decoder) check(ok bool, format string, args ...any) {
	if !ok {
		d.fail(format, args...)
	}
}

func (d *decoder) byte() uint8 {
	if len(d.b) < 1 {
		d.fail("payload ends early")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail("payload ends early")
		return 0
	}
	v := getU64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad or missing uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad or missing varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a list length of at most limit elements, each at least
// minSize bytes.
func (d *decoder) count(limit, minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(limit) || n*uint64(minSize) > uint64(len(d.b)) {
		d.fail("list of %d elements is too long", n)
		return 0
	}
	return int(n)
}

func (d *decoder) bytes(n int) string {
	if n > len(d.b) {
		d.fail("payload ends early")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) str(limit int) string {
	n := d.count(limit, 1)
	if d.err != nil {
		return ""
	}
	return d.bytes(n)
}

func (d *decoder) values(dst []int64) []int64 {
	n := d.count(MaxValues, 1)
	for range n {
		dst = append(dst, d.varint())
	}
	return dst
}

func (d *decoder) finish(op Op) error {
	if d.err != nil {
		return fmt.Errorf("%v: %w", op, d.err)
	}
	if len(d.b) != 0 {
		return malformed("%v: %d trailing bytes", op, len(d.b))
	}
	return nil
}
