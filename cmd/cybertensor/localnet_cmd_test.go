package main

import (
	"regexp"
	"strings"
	"testing"
)

// localnet serves its dashboard on a free loopback port by default and
// prints where; --dashboard "" turns it off.
func TestLocalnetDashboardFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network")
	}
	c := newCLI(t)
	args := []string{"localnet", "--validators", "1", "--miners", "1", "--tempo", "2", "--block-time", "100ms", "--for", "1s", "--json", "--log-level", "error"}
	r := c.ok(args...)
	if !regexp.MustCompile(`(?m)^dashboard: http://127\.0\.0\.1:[0-9]+$`).MatchString(r.stderr) {
		t.Errorf("no dashboard URL in the progress:\n%s", r.stderr)
	}
	r = c.ok(append(args, "--dashboard", "")...)
	if strings.Contains(r.stderr, "dashboard:") {
		t.Errorf("--dashboard \"\" still serves one:\n%s", r.stderr)
	}
}
