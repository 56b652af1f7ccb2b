package bench

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill the child if its parent dies.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
