package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cybertensor/cybertensor/dashboard"
	"github.com/cybertensor/cybertensor/internal/browsertest"
)

// "cybertensor dashboard --chain URL" serves the dashboard of a running
// chain: /api/state has the subnet with its registered neuron and the
// epochs that passed, /metrics the chain's gauges and none of the
// neurons' own counters, and a browser sees the subnet's table with those
// counters shown as unknown.
func TestDashboardCommandServesAChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "default", "--password-file", pw)
	hotkey := decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--json").stdout).Hotkeys[0].Address
	url := runningChain(t, c, home)
	run := func(args ...string) result {
		return c.ok(append(append([]string{"--home", home}, args...), "--chain", url)...)
	}
	run("subnets", "create", "--name", "qa", "--password-file", pw)
	run("subnets", "set-hyperparam", "--netuid", "1", "--name", "tempo", "--value", "2", "--password-file", pw)
	run("subnets", "register", "--netuid", "1", "--password-file", pw)

	stop, out := startCommand(t, home, "dashboard", "--chain", url, "--listen", "127.0.0.1:0")
	defer stop()
	urlLine := regexp.MustCompile(`(?m)^dashboard: (http://127\.0\.0\.1:[0-9]+)$`)
	var board string
	waitUntil(t, time.Minute, "the dashboard's URL", func() bool {
		if m := urlLine.FindStringSubmatch(out.String()); m != nil {
			board = m[1]
			return true
		}
		return false
	}, out.String)

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	fetch := func(path string) string {
		t.Helper()
		resp, err := client.Get(board + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d, %v", path, resp.StatusCode, err)
		}
		return string(b)
	}
	var st dashboard.State
	waitUntil(t, time.Minute, "subnet 1 with the registered neuron after an epoch", func() bool {
		st = dashboard.State{}
		if err := json.Unmarshal([]byte(fetch("/api/state")), &st); err != nil {
			t.Fatal(err)
		}
		for _, s := range st.Subnets {
			if s.Netuid == 1 && s.Name == "qa" && s.Tempo == 2 && len(s.Neurons) == 1 && s.Neurons[0].Hotkey == hotkey &&
				len(s.History) > 0 && s.History[len(s.History)-1].Block > 0 {
				return true
			}
		}
		return false
	}, func() string { b, _ := json.Marshal(st); return string(b) })
	if !st.ChainOnly || st.Block == 0 || st.Epochs == 0 || !strings.HasPrefix(st.ChainID, "cybertensor") {
		t.Errorf("state: %+v", st)
	}
	metrics := fetch("/metrics")
	for _, want := range []string{"cybertensor_chain_block ", `cybertensor_chain_epochs_total{netuid="1"}`,
		`cybertensor_chain_neuron_stake{adversary="",netuid="1",role="",uid="0"}`, "go_goroutines "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, unknown := range []string{"queries_served", "gossip_", "knowledge_"} {
		if strings.Contains(metrics, "cybertensor_chain_"+unknown) {
			t.Errorf("/metrics has %s, which a chain cannot know", unknown)
		}
	}

	t.Run("browser", func(t *testing.T) {
		ctx := browsertest.New(t) // skips without a browser, unless CI requires one
		if err := chromedp.Do(ctx, chromedp.Navigate(board)); err != nil {
			t.Fatal(err)
		}
		wait := func(what, predicate string) {
			t.Helper()
			if _, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate,
				chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(time.Minute))); err != nil {
				t.Fatalf("waiting for %s: %v", what, err)
			}
		}
		wait("subnet 1's table with the registered neuron", `(() => {
			const rows = document.querySelectorAll("#metagraph tbody tr.neuron");
			return rows.length === 1 && rows[0].querySelector("td.hotkey").title === `+jsString(hotkey)+` &&
				document.getElementById("subnet-title").textContent.includes("qa");
		})()`)
		wait("the neurons' own counters shown as unknown, no neuron marked offline",
			`document.querySelector("#metagraph td.served").classList.contains("unknown") &&
			document.querySelector("#stat-queries .v").textContent === "–" && !document.querySelector("#metagraph tr.offline")`)
		wait("the chain's block and epochs in the header", `Number(document.getElementById("block").textContent.replace(/,/g, "")) > 0 &&
			Number(document.getElementById("epochs").textContent) > 0`)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		browsertest.SaveScreenshot(t, "dashboard-chain.png", png)
	})
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitUntil polls cond until it holds, failing t after d with what and
// the output of describe.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v: %s", what, d, describe())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
