//go:build !linux

package enclave

import "os/exec"

const netnsSupported = false

func isolateNet(*exec.Cmd) {}
