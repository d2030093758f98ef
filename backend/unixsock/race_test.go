//go:build race

package unixsock

// manyWaits is how many waits the wait tests queue: the race detector allows
// 8,128 live goroutines, and the server runs one per wait.
const manyWaits = 4000
