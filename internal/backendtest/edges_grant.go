package backendtest

// grantCases returns the cases of a waiter's ctx checked at the instant of its grant.
func grantCases() []Case {
	return nil
}
