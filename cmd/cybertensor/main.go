// Command cybertensor is the single binary of the cybertensor network: it
// manages wallets, evaluates the Yuma consensus epoch and, as the other
// components land, runs the chain, miners, validators and a local network.
//
// Run "cybertensor --help" for the command tree.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], newEnv())
	stop()
	os.Exit(code)
}
