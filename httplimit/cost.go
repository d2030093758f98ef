package httplimit

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/concurry/concurry"
)

// CostHeader returns a Cost func that takes the amount of key from a request
// header holding a positive integer (e.g. the tokens a client declares),
// or def when the header is absent. A malformed or non-positive value is an
// error (400 by default).
func CostHeader(key, header string, def int64) func(*http.Request) (concurry.Amounts, error) {
	return func(r *http.Request) (concurry.Amounts, error) {
		v := r.Header.Get(header)
		if v == "" {
			return concurry.Amounts{key: def}, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("header %s: %q is not a positive integer", header, v)
		}
		return concurry.Amounts{key: n}, nil
	}
}

// CostBodySize returns a Cost func that takes the request's body size in
// bytes (its Content-Length, at least 1) of key. A request without a
// Content-Length (a chunked upload) is an error, since its size is not known
// before it is read.
func CostBodySize(key string) func(*http.Request) (concurry.Amounts, error) {
	return func(r *http.Request) (concurry.Amounts, error) {
		if r.ContentLength < 0 {
			return nil, fmt.Errorf("request without Content-Length")
		}
		return concurry.Amounts{key: max(1, r.ContentLength)}, nil
	}
}
