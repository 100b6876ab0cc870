// Command pause is the pod sandbox ("pause") image of the test node: there is no registry to
// pull registry.k8s.io/pause from. Like upstream's pause it holds the pod's namespaces open,
// reaps zombies (it is PID 1 of pods that share their PID namespace) and exits on
// SIGINT/SIGTERM. Standard library only, built static.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
