package localnet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cybertensor/cybertensor/dashboard"
	"github.com/cybertensor/cybertensor/internal/browsertest"
)

// A real localnet serves its dashboard: a browser sees the metagraph table
// fill with earning miners and the chart draw incentive over epochs, and
// /metrics has the localnet's gauges. The screenshot is saved (to
// $CYBERTENSOR_SCREENSHOT_DIR if set).
func TestDashboardInBrowser(t *testing.T) {
	ctx := browsertest.New(t) // skips under -short and without a browser

	urls := make(chan string, 1)
	var progress bytes.Buffer
	cfg := DefaultConfig()
	cfg.Validators, cfg.Miners = 1, 2
	cfg.Tempo, cfg.BlockTime = 3, 100*time.Millisecond
	cfg.Dashboard = "127.0.0.1:0"
	cfg.OnDashboard = func(url string) { urls <- url }
	cfg.Progress = &progress
	cfg.Logger = slog.New(slog.DiscardHandler)
	runCtx, stop := context.WithCancel(context.Background())
	type outcome struct {
		s   *Summary
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		s, err := Run(runCtx, cfg)
		done <- outcome{s, err}
	}()
	finished := false
	finish := func() outcome {
		stop()
		o := <-done
		finished = true
		return o
	}
	defer func() {
		if !finished {
			finish()
		}
	}()

	var url string
	select {
	case url = <-urls:
	case o := <-done:
		finished = true
		t.Fatalf("localnet ended before serving its dashboard: %v", o.err)
	case <-time.After(2 * time.Minute):
		t.Fatal("no dashboard after 2 minutes")
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	// Starting the neurons and the first epochs take a while on a busy
	// machine.
	const timeout = 2 * time.Minute
	wait := func(what, predicate string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate,
			chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	wait("a metagraph row per neuron, a miner earning", `(() => {
		const rows = document.querySelectorAll("#metagraph tbody tr.neuron");
		const inc = [...document.querySelectorAll("#metagraph tbody tr.neuron td.incentive")].map(td => parseFloat(td.dataset.value));
		return rows.length === 3 && inc.some(v => v > 0);
	})()`)
	wait("a chart line of at least two epochs", `[...document.querySelectorAll("#chart svg polyline")].some(l => l.points.length >= 2)`)
	// A few more epochs make a more telling screenshot.
	wait("five epochs", `[...document.querySelectorAll("#chart svg polyline")].some(l => l.points.length >= 5)`)
	wait("roles and the legend", `document.querySelectorAll("#metagraph .pill.validator").length === 1 &&
		document.querySelectorAll("#metagraph .pill.miner").length === 2 && document.querySelectorAll("#legend .legend-item").length === 3`)
	wait("heartbeats heard over gossip", `document.querySelector("#stat-heard .v").textContent.endsWith("%") &&
		document.querySelector("#stat-heard .v").textContent !== "0%"`)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	browsertest.SaveScreenshot(t, "dashboard-localnet.png", png)

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	fetch := func(path string) string {
		t.Helper()
		resp, err := client.Get(url + path)
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
	if err := json.Unmarshal([]byte(fetch("/api/state")), &st); err != nil {
		t.Fatal(err)
	}
	if st.ChainID != "cybertensor-localnet" || len(st.Subnets) != 1 || st.Subnets[0].Name != "qa" || len(st.Subnets[0].History) < 2 || st.Block == 0 {
		t.Errorf("state: %+v", st)
	}
	metrics := fetch("/metrics")
	for _, want := range []string{"cybertensor_localnet_block ", `cybertensor_localnet_epochs_total{netuid="1"}`,
		"cybertensor_localnet_neuron_stake{", "cybertensor_localnet_neuron_dividends{", "go_goroutines "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !minerIncentive(metrics) {
		t.Errorf("/metrics has no miner with incentive:\n%s", metrics)
	}

	o := finish()
	if o.err != nil {
		t.Fatal(o.err)
	}
	if !strings.Contains(progress.String(), "dashboard: "+url+"\n") {
		t.Errorf("progress does not show the dashboard's URL %s:\n%s", url, progress.String())
	}
}

// minerIncentive reports whether a Prometheus exposition has a miner's
// incentive above zero.
func minerIncentive(exposition string) bool {
	sc := bufio.NewScanner(strings.NewReader(exposition))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "cybertensor_localnet_neuron_incentive{") || !strings.Contains(line, `role="miner"`) {
			continue
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil && v > 0 {
			return true
		}
	}
	return false
}
