package batch

import "errors"

// Sentinel errors of a batch run.
var (
	// ErrInvalidConfig reports a Config that can never run.
	ErrInvalidConfig = errors.New("llm-batch: invalid config")
	// ErrQuotaExceeded reports a 429 from the provider. The call's error is a
	// *worker.RetryAfterError carrying the provider's Retry-After.
	ErrQuotaExceeded = errors.New("llm-batch: quota exceeded (429)")
	// ErrTransport reports a call that got no HTTP response.
	ErrTransport = errors.New("llm-batch: transport error")
	// ErrBadResponse reports an HTTP response that is neither a success nor
	// a 429; it is not retried.
	ErrBadResponse = errors.New("llm-batch: bad response")
)

// retryable reports whether a call's error is worth another attempt: a 429
// or a transport error.
func retryable(err error) bool {
	return errors.Is(err, ErrQuotaExceeded) || errors.Is(err, ErrTransport)
}
