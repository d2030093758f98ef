package httplimit

import (
	"bytes"
	"math"
)

// The API presets read a few numbers from JSON texts on every request and
// response: a request's max_tokens, an answer's usage. Decoding the whole
// text with encoding/json to get them costs more than the rest of a
// Transport's work, so the presets first try members, a scan that
// validates the text and keeps only the raw values of the members asked
// for, allocating nothing. It gives up on what it does not read exactly as
// encoding/json would — a key with an escape or a non-ASCII byte, a wanted
// member given twice, deep nesting, a value of the wrong type — and the
// presets then decode with encoding/json, so either way a text reads the
// same (FuzzJSONMembers checks it).

// maxScanDepth bounds the nesting members follows before giving up.
const maxScanDepth = 64

// members scans b, which must be one JSON object and nothing else (spaces
// aside), and sets vals[i] to the raw value of the member whose key matches
// names[i] as encoding/json matches a field's name (exactly, or equal
// under ASCII case folding), nil when there is none. It reports false when
// b is not valid JSON, not an object, or not something it reads exactly:
// a key with an escape or a non-ASCII byte, a name matched twice, nesting
// deeper than maxScanDepth. names are lower-case ASCII.
func members(b []byte, names []string, vals [][]byte) bool {
	clear(vals)
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		start := i
		var plain bool
		if i, plain = skipString(b, i); i < 0 || !plain {
			return false
		}
		key := b[start+1 : i-1]
		if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
			return false
		}
		start = skipSpace(b, i+1)
		if i = skipValue(b, start, 1); i < 0 {
			return false
		}
		for n, name := range names {
			if foldEqual(key, name) {
				if vals[n] != nil {
					return false // encoding/json would merge the two
				}
				vals[n] = b[start:i]
			}
		}
		if i = skipSpace(b, i); i >= len(b) {
			return false
		}
		switch b[i] {
		case '}':
			return skipSpace(b, i+1) == len(b)
		case ',':
			i = skipSpace(b, i+1)
		default:
			return false
		}
	}
}

// foldEqual reports whether key equals name, a lower-case ASCII string,
// under ASCII case folding.
func foldEqual(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// jsonInt reads v, a raw value from members, as encoding/json reads it
// into an *int64: set says it is a number (not absent, not null), ok that
// it is one of those three — anything else (a fraction, an exponent, a
// string, an overflow) fails encoding/json.
func jsonInt(v []byte) (n int64, set, ok bool) {
	if jsonNull(v) {
		return 0, false, true
	}
	neg := len(v) > 0 && v[0] == '-'
	if neg {
		v = v[1:]
	}
	if len(v) == 0 {
		return 0, false, false
	}
	var u uint64
	for _, c := range v {
		if c < '0' || c > '9' || u > (math.MaxInt64+1)/10 {
			return 0, false, false
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case neg && u <= math.MaxInt64+1:
		return int64(-u), true, true // -(2^63) wraps to MinInt64
	case !neg && u <= math.MaxInt64:
		return int64(u), true, true
	}
	return 0, false, false
}

// jsonString reads v, a raw value from members, as encoding/json reads it
// into a string, and returns its contents: ok is false for anything but
// absent, null, or a string without escapes.
func jsonString(v []byte) ([]byte, bool) {
	if jsonNull(v) {
		return nil, true
	}
	if len(v) < 2 || v[0] != '"' || bytes.IndexByte(v, '\\') >= 0 {
		return nil, false
	}
	return v[1 : len(v)-1], true
}

// counts is what encoding/json reads from a usage object into a struct of
// *int64 fields (or int64 fields, which read the same but for telling 0
// from absent): n[i] is the member names[i], set[i] says it was a number.
type counts struct {
	present bool // the object was there: not absent, not null
	n       [4]int64
	set     [4]bool
}

// scanCounts reads v, a raw value from members, into c: an object with the
// integer members names (at most four), or null. It reports false when it
// cannot read v as encoding/json would.
func scanCounts(v []byte, names []string, c *counts) bool {
	*c = counts{}
	if jsonNull(v) {
		return true
	}
	var f [4][]byte
	if !jsonObject(v) || !members(v, names, f[:len(names)]) {
		return false
	}
	for i := range names {
		var ok bool
		if c.n[i], c.set[i], ok = jsonInt(f[i]); !ok {
			return false
		}
	}
	c.present = true
	return true
}

// jsonObject reports whether v, a raw value from members, is an object.
func jsonObject(v []byte) bool { return len(v) > 0 && v[0] == '{' }

// jsonNull reports whether v, a raw value from members, is absent or null.
func jsonNull(v []byte) bool { return v == nil || string(v) == "null" }

// The skip functions walk a JSON text, validating it, without building
// values: each takes the index where its part starts and returns the index
// after it, or -1 where the text is not valid JSON.

// skipSpace returns the index of the first byte at or after i that is not
// white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipValue skips the value at i, depth containers deep.
func skipValue(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '{', '[':
		return skipContainer(b, i, depth+1)
	case '"':
		i, _ = skipString(b, i)
		return i
	case 't':
		return skipLiteral(b, i, "true")
	case 'f':
		return skipLiteral(b, i, "false")
	case 'n':
		return skipLiteral(b, i, "null")
	}
	return skipNumber(b, i)
}

// skipContainer skips the object or array at i, at depth.
func skipContainer(b []byte, i, depth int) int {
	if depth > maxScanDepth {
		return -1
	}
	object := b[i] == '{'
	closing := byte(']')
	if object {
		closing = '}'
	}
	if i = skipSpace(b, i+1); i < len(b) && b[i] == closing {
		return i + 1
	}
	for {
		if object {
			if i, _ = skipString(b, i); i < 0 {
				return -1
			}
			if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
				return -1
			}
			i = skipSpace(b, i+1)
		}
		if i = skipValue(b, i, depth); i < 0 {
			return -1
		}
		if i = skipSpace(b, i); i >= len(b) {
			return -1
		}
		switch b[i] {
		case closing:
			return i + 1
		case ',':
			i = skipSpace(b, i+1)
		default:
			return -1
		}
	}
}

// skipString skips the string at i; plain says it holds neither an escape
// nor a non-ASCII byte.
func skipString(b []byte, i int) (end int, plain bool) {
	if i >= len(b) || b[i] != '"' {
		return -1, false
	}
	plain = true
	for i++; i < len(b); {
		c := b[i]
		switch {
		case plainByte[c]:
			i++
		case c == '"':
			return i + 1, plain
		case c == '\\':
			plain = false
			if i = skipEscape(b, i); i < 0 {
				return -1, false
			}
		case c < 0x20:
			return -1, false
		default: // non-ASCII
			plain = false
			i++
		}
	}
	return -1, false
}

// plainByte marks the bytes a string holds as they are: not the quote, the
// backslash, a control or a non-ASCII byte.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipEscape skips the backslash escape at i.
func skipEscape(b []byte, i int) int {
	if i+1 >= len(b) {
		return -1
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2
	case 'u':
		if i+6 > len(b) {
			return -1
		}
		for _, h := range b[i+2 : i+6] {
			if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
				return -1
			}
		}
		return i + 6
	}
	return -1
}

func skipLiteral(b []byte, i int, lit string) int {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return -1
	}
	return i + len(lit)
}

// skipNumber skips the number at i:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if j := skipDigits(b, i+1); j > i+1 {
			i = j
		} else {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

// skipDigits skips the digits at i.
func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
