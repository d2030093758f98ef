package backendtest

// poolCases returns the cases of LimitPool waits where the losing sets spend nothing.
func poolCases() []Case {
	return nil
}
