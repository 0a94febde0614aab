//go:build race

package clean

// raceEnabled: under -race sync.Pool drops items on purpose, so pooled
// buffers allocate and allocation counts mean nothing.
const raceEnabled = true
