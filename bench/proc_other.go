//go:build !linux

package bench

import "os/exec"

// setDeathSignal does nothing here: a child still exits when its stdin
// closes (its parent died) or its time bound passes.
func setDeathSignal(*exec.Cmd) {}
