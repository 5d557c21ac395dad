package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
)

// At the default level an operator sees what matters: a chain node, a
// miner and a validator that work and stop on Ctrl-C log no errors, and
// none of the third-party chatter of #20 "Quiet logs" (gossip's "error
// bumping delivery tag", the node's "could not find results for height").
func TestQuietLogsAtInfo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node and two neurons")
	}
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	for _, w := range []string{"default", "m", "v"} {
		c.ok("--home", home, "wallet", "new", "--wallet", w, "--password-file", pw)
	}
	fund := func(name string) string {
		return decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--wallet", name, "--json").stdout).Coldkey.Address + "=100000"
	}
	// Checked after the node stopped (cleanups run last first).
	var chainLog *syncBuffer
	t.Cleanup(func() { checkQuiet(t, "chain node", chainLog) })
	url, chainLog := runningChainLogs(t, c, home, chain.YumaEpoch, "--fund", fund("m"), "--fund", fund("v"))
	c.ok("--home", home, "subnets", "create", "--name", "qa", "--password-file", pw, "--chain", url)
	stopMiner, minerLog := startCommand(t, home, "--log-level", "info", "miner", "run", "--wallet", "m", "--netuid", "1",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--password-file", pw, "--chain", url)
	stopValidator, validatorLog := startCommand(t, home, "--log-level", "info", "validator", "run", "--builtin", "qa", "--wallet", "v", "--netuid", "1",
		"--stake", "50", "--listen", "/ip4/127.0.0.1/tcp/0", "--password-file", pw, "--chain", url, "--query-every", "1", "--weights-every", "3")
	// Work happens: the miner hears the validator's knowledge over gossip
	// and the validator sets weights, over a few epochs.
	deadline := time.Now().Add(60 * time.Second)
	weightsSet := func() bool {
		r := c.run("--home", home, "weights", "show", "--netuid", "1", "--json", "--chain", url)
		return r.code == 0 && strings.Contains(r.stdout, `"uid"`)
	}
	for !strings.Contains(minerLog.String(), "knowledge announced") || !weightsSet() {
		if time.Now().After(deadline) {
			t.Fatalf("no work done; miner:\n%.3000s\nvalidator:\n%.3000s", minerLog.String(), validatorLog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopValidator()
	stopMiner()
	checkQuiet(t, "miner", minerLog)
	checkQuiet(t, "validator", validatorLog)
}

// checkQuiet fails t for each error or known chatter line in log.
func checkQuiet(t *testing.T, name string, log *syncBuffer) {
	t.Helper()
	if log == nil {
		return
	}
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "bumping delivery tag") || strings.Contains(line, "could not find results") {
			t.Errorf("the %s logged at the default level: %.600s", name, line)
		}
	}
}
