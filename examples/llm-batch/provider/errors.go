package provider

import "errors"

// Sentinel errors of the simulated provider.
var (
	// ErrInvalidOptions reports Options that can never run: New and Start
	// wrap it with the field at fault.
	ErrInvalidOptions = errors.New("concurry: provider: invalid options")
	// ErrClosed reports a call through the in-memory transport of a Server
	// that was closed.
	ErrClosed = errors.New("concurry: provider: closed")
	// ErrTokenizerFailed reports a call whose Options.CountTokens panicked
	// or called runtime.Goexit: the call is answered 500 and the Server
	// serves on.
	ErrTokenizerFailed = errors.New("concurry: provider: tokenizer failed")
	// ErrHandlerPanic reports a call whose handler panicked before it
	// answered; the panic is contained and the Server serves on.
	ErrHandlerPanic = errors.New("concurry: provider: handler panicked")
)
