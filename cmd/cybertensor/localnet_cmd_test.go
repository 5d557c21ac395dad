package main

import (
	"encoding/json"
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

// localnet --gateway prints the gateway's URL and key, and --json carries
// its URL and usage; a gateway without a chat subnet, or at a bad address,
// is a usage error.
func TestLocalnetGatewayFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network")
	}
	c := newCLI(t)
	r := c.ok("localnet", "--validators", "1", "--miners", "1", "--tempo", "2", "--block-time", "100ms", "--for", "1s", "--json", "--log-level", "error",
		"--dashboard", "", "--gateway", "127.0.0.1:0", "--gateway-dir", t.TempDir())
	m := regexp.MustCompile(`(?m)^gateway: (http://127\.0\.0\.1:[0-9]+/v1) key ct-[A-Za-z0-9_-]+$`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no gateway URL and key in the progress:\n%s", r.stderr)
	}
	var s struct {
		Gateway *struct {
			URL   string `json:"url"`
			Usage struct {
				Requests *int64 `json:"requests"`
			} `json:"usage"`
		} `json:"gateway"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	if s.Gateway == nil || s.Gateway.URL != m[1] || s.Gateway.Usage.Requests == nil || *s.Gateway.Usage.Requests != 0 {
		t.Fatalf("--json's gateway: %s", r.stdout)
	}
	r = c.fail(2, "localnet", "--subnets", "storage", "--gateway", "127.0.0.1:0", "--for", "1s")
	if !strings.Contains(r.stderr, "text.chat") {
		t.Errorf("a gateway without a chat subnet: %s", r.stderr)
	}
	c.fail(2, "localnet", "--gateway", "nonsense", "--for", "1s")
	c.fail(2, "localnet", "--upstream", "ftp://x", "--for", "1s")
}

// localnet --subnets model prints the models' ranking after the neurons,
// and --json carries it.
func TestLocalnetModelSubnet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network")
	}
	c := newCLI(t)
	args := []string{"localnet", "--subnets", "model", "--validators", "1", "--miners", "3", "--adversaries", "lazy", "--tempo", "3", "--block-time", "100ms",
		"--epochs", "4", "--log-level", "error", "--dashboard", ""}
	r := c.ok(args...)
	_, ranking, ok := strings.Cut(r.stdout, "\nmodels of subnet 1 by incentive")
	if !ok {
		t.Fatalf("no ranking:\n%s", r.stdout)
	}
	rows := strings.Split(strings.TrimSpace(ranking), "\n")
	if len(rows) != 5 || !strings.HasPrefix(rows[1], "UID") || !strings.Contains(rows[2], "honest  81394") || !strings.Contains(rows[2], "the best") ||
		!strings.Contains(rows[4], "lazy") {
		t.Fatalf("ranking:\n%s", ranking)
	}
	r = c.ok(append(args, "--json")...)
	var s struct {
		Models []struct {
			UID          uint16   `json:"uid"`
			TrainedBytes int64    `json:"trained_bytes"`
			CID          string   `json:"cid"`
			Loss         *float64 `json:"loss"`
			Incentive    float64  `json:"incentive"`
		} `json:"models"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Models) != 3 || s.Models[0].TrainedBytes != 81394 || s.Models[0].Loss == nil || s.Models[0].CID == "" || s.Models[0].Incentive <= s.Models[1].Incentive {
		t.Fatalf("--json's models: %s", r.stdout)
	}
}
