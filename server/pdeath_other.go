//go:build unix && !linux

package server

import "syscall"

func setPdeathsig(*syscall.SysProcAttr) {}
