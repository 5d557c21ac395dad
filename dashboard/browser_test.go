package dashboard

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cybertensor/cybertensor/internal/browsertest"
)

// waitFor polls a JavaScript predicate in the page until it holds, failing
// the test after timeout.
func waitFor(t *testing.T, ctx context.Context, what, predicate string, timeout time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// The page renders a source's state: the header, a row per neuron with its
// role, a polyline per earning neuron, the legend and the stats; and it
// follows the source as it changes.
func TestBrowserRendersState(t *testing.T) {
	ctx := browsertest.New(t)
	src := &fakeSource{st: sampleState()}
	s := start(t, src)
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL())); err != nil {
		t.Fatal(err)
	}
	const timeout = 30 * time.Second
	waitFor(t, ctx, "three metagraph rows", `document.querySelectorAll("#metagraph tbody tr.neuron").length === 3`, timeout)
	waitFor(t, ctx, "the header", `document.getElementById("block").textContent === "42" && document.getElementById("chain-id").textContent === "cybertensor-test"`, timeout)
	waitFor(t, ctx, "the lazy miner's badge", `document.querySelector('#metagraph tbody tr[data-uid="2"] .pill.adversary').textContent === "lazy"`, timeout)
	waitFor(t, ctx, "the honest miner's incentive", `document.querySelector('#metagraph tbody tr[data-uid="1"] td.incentive').textContent === "0.9700"`, timeout)
	// Incentive: the two miners; dividends: the validator.
	waitFor(t, ctx, "three polylines of three points", `(() => {
		const lines = [...document.querySelectorAll("#chart svg polyline")];
		return lines.length === 3 && lines.every(l => l.points.length === 3);
	})()`, timeout)
	waitFor(t, ctx, "a legend entry per neuron", `document.querySelectorAll("#legend .legend-item").length === 3`, timeout)
	waitFor(t, ctx, "the honest miner's organic traffic", `(() => {
		const row = document.querySelector('#metagraph tbody tr[data-uid="1"]');
		return row.querySelector("td.organic").textContent === "7" && row.querySelector("td.organic-failures").textContent === "1" &&
			row.querySelector("td.organic-tokens").textContent.replace(/\D/g, "") === "1234";
	})()`, timeout)
	waitFor(t, ctx, "the gossip stats", `document.querySelector("#stat-heard .v").textContent === "100%" && document.querySelector("#stat-fetched .v").textContent === "12"`, timeout)

	next := sampleState()
	next.Block, next.Epochs = 16, 4
	next.Subnets[0].Epochs = 4
	next.Subnets[0].History = append(next.Subnets[0].History, EpochPoint{Epoch: 4, Block: 16,
		Incentive: []float64{0, 0.99, 0.01}, Dividends: []float64{1, 0, 0}})
	next.Subnets[0].Neurons[2].Online = false
	src.set(next)
	waitFor(t, ctx, "the next epoch", `[...document.querySelectorAll("#chart svg polyline")].every(l => l.points.length === 4)`, timeout)
	waitFor(t, ctx, "the offline neuron", `document.querySelector('#metagraph tbody tr[data-uid="2"]').classList.contains("offline")`, timeout)

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	browsertest.SaveScreenshot(t, "dashboard-sample.png", png)
}
