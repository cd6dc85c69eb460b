package main

import "syscall"

// umask narrows the socket's permissions from the moment it is created,
// before the chmod that makes them explicit.
func umask(m int) int { return syscall.Umask(m) }
