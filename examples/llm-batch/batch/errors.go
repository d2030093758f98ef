package batch

import "errors"

// Sentinel errors of a batch run.
var (
	// ErrInvalidConfig reports a Config that can never run.
	ErrInvalidConfig = errors.New("batch: invalid config")
	// ErrQuotaExceeded reports a 429 from the provider. The call's error is a
	// *worker.RetryAfterError carrying the provider's Retry-After.
	ErrQuotaExceeded = errors.New("batch: quota exceeded (429)")
	// ErrTransport reports a call that got no HTTP response.
	ErrTransport = errors.New("batch: transport error")
	// ErrBadResponse reports an HTTP response that is neither a success nor
	// a 429; it is not retried.
	ErrBadResponse = errors.New("batch: bad response")
	// ErrPromptsFailed reports a run in which some prompts failed for good:
	// Run's error names how many, and the first error.
	ErrPromptsFailed = errors.New("batch: prompts failed")
)

// retryable reports whether a call's error is worth another attempt: a 429
// or a transport error.
func retryable(err error) bool {
	return errors.Is(err, ErrQuotaExceeded) || errors.Is(err, ErrTransport)
}
