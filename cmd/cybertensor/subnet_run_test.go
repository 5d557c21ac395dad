package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
)

// A spec's miners and validators from the command line: subnets create
// --builtin storage|compute, miner run --builtin, validator run --builtin;
// the miner earns.
func TestBuiltinSubnetsRun(t *testing.T) {
	c := newCLI(t)
	// Spec mistakes are usage errors, found before any key or chain.
	c.fail(2, "miner", "run", "--builtin", "nope")
	c.fail(2, "miner", "run", "--builtin", "compute", "--spec", "x.yaml")
	if testing.Short() {
		t.Skip("runs a CometBFT node and two neurons per subnet")
	}
	for _, name := range []string{"compute", "storage"} {
		t.Run(name, func(t *testing.T) {
			c := newCLI(t)
			dir := t.TempDir()
			home := filepath.Join(dir, "home")
			pw := writeFile(t, dir, "pw", "pw")
			url := minerAndValidatorChain(t, c, home, pw)
			c.ok("--home", home, "subnets", "create", "--builtin", name, "--password-file", pw, "--chain", url)

			start := func(args ...string) (func(), *syncBuffer) { return startCommand(t, home, args...) }
			stopMiner, minerOut := start("miner", "run", "--builtin", name, "--wallet", "m", "--netuid", "1", "--listen", "/ip4/127.0.0.1/tcp/0", "--password-file", pw, "--chain", url)
			defer stopMiner()
			stopValidator, validatorOut := start("validator", "run", "--builtin", name, "--wallet", "v", "--netuid", "1", "--stake", "50", "--listen", "/ip4/127.0.0.1/tcp/0", "--password-file", pw, "--chain", url, "--query-every", "1", "--weights-every", "3")
			defer stopValidator()

			deadline := time.Now().Add(60 * time.Second)
			for {
				r := c.run("--home", home, "metagraph", "--netuid", "1", "--json", "--chain", url)
				if r.code == 0 {
					m := decode[chain.Metagraph](t, r.stdout)
					minerEarns := false
					for uid := range m.N {
						minerEarns = minerEarns || (m.Axons[uid] != nil && m.Incentive[uid] > 0)
					}
					if minerEarns {
						synapse := map[string]string{"compute": "compute.run", "storage": "storage.prove"}[name]
						if !strings.Contains(validatorOut.String(), `running spec "`+name+`": `+synapse+` tasks`) || !strings.Contains(minerOut.String(), "serving "+synapse) {
							t.Fatalf("the neurons did not run the spec:\n%s\n%s", validatorOut.String(), minerOut.String())
						}
						return
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no incentive for the miner: %s\nminer: %s\nvalidator: %s", r.stdout, minerOut.String(), validatorOut.String())
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
