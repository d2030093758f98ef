//go:build !race

package unixsock

// manyWaits is how many waits the wait tests queue (one goroutine each in
// the server).
const manyWaits = 32_000
