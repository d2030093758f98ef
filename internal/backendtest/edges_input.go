package backendtest

// inputCases returns the cases of requests refused on the client without costing other holdings.
func inputCases() []Case {
	return nil
}
