package backendtest

// deadlineCases returns the cases of deadlines projected through the waiters ahead.
func deadlineCases() []Case {
	return nil
}
