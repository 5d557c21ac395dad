package hostile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"go.uber.org/goleak"
)

var (
	attackFor = flag.Duration("attack", 0, "how long the flood lasts (default 30s, 15s with -short)")
	cleanFor  = flag.Duration("clean", 0, "how long the network runs before the flood (default 10s, 8s with -short)")
	heapFile  = flag.String("heapprofile", "", "write a heap profile of the network's process halfway through the flood to this file")
)

func TestMain(m *testing.M) {
	if os.Getenv(networkEnv) == "1" {
		os.Exit(runNetwork())
	}
	goleak.VerifyTestMain(m,
		// go-libp2p-kad-dht's shared worker pools and the go-log event loop
		// are process-wide and outlive any one host.
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

// The bounds the issue sets (#19, "The property to hold").
const (
	maxRSSRatio      = 2.0       // attacked peak RSS / clean peak RSS
	maxRSS           = 512 << 20 // attacked peak RSS
	minRegistered    = 0.95      // registered peers' probes that succeed
	minNewcomer      = 0.50      // newcomers' probes that succeed
	recoverWithin    = 10 * time.Second
	recoverTolerance = 1.25 // live heap within this of the clean level counts as back
	// keptByDesign is what the target keeps of the attack on purpose:
	// provider records of unregistered peers, up to the DHT's bound for
	// them (dht.DefaultConfig: 16,384 records of about 330 bytes), which
	// live until they expire like anyone's.
	keptByDesign = 16384 * 330
)

// TestFloodMix floods one miner of a running network six ways at once
// (issue #19) and checks that it keeps serving: memory bounded, honest
// registered peers served, newcomers let in, memory back after the flood.
func TestFloodMix(t *testing.T) {
	clean, flood := 10*time.Second, 30*time.Second
	if testing.Short() {
		clean, flood = 8*time.Second, 15*time.Second
	}
	if *cleanFor > 0 {
		clean = *cleanFor
	}
	if *attackFor > 0 {
		flood = *attackFor
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute+clean+flood)
	defer cancel()
	nw := startNetwork(t, ctx)
	rd := nw.ready
	object, err := cid.Decode(rd.Object)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("network up: %d neurons; the target is %s", rd.Neurons, rd.Target.ID)

	// Clean: the network and its honest peers, nobody else.
	nw.phase("clean")
	wait(ctx, clean)
	base := nw.live()
	cleanReport := nw.phase("ramp")

	// The flood: every identity connected and at work before it counts.
	atk, err := startAttack(rd.Target, object, defaultAttack)
	if err != nil {
		t.Fatal(err)
	}
	defer atk.stop()
	up := waitFor(ctx, 30*time.Second, func() bool {
		s := &atk.stats
		return s.ProvidersSent.Load() > 0 && s.FramesOpened.Load() > 0 &&
			s.IdleOpened.Load() > 0 && s.DripStreams.Load() > 0 && s.Refusals.Load() > 0
	})
	t.Logf("attack up: %v (%s)", up, atk.stats.String())
	ramp := nw.phase("attack")
	if *heapFile != "" {
		wait(ctx, flood/2)
		nw.heapProfile(*heapFile)
		wait(ctx, flood-flood/2)
	} else {
		wait(ctx, flood)
	}
	attackReport := nw.phase("recover")
	atk.stop()
	stopped := time.Now()
	t.Logf("attack over: %s", atk.stats.String())

	// Memory back: the live heap within recoverTolerance of the clean level.
	var after reading
	backAfter := time.Duration(-1)
	for time.Since(stopped) < recoverWithin+5*time.Second {
		after = nw.live()
		if float64(after.LiveHeap) <= recoverTolerance*float64(base.LiveHeap)+keptByDesign {
			backAfter = time.Since(stopped)
			break
		}
		wait(ctx, 500*time.Millisecond)
	}
	wait(ctx, time.Until(stopped.Add(recoverWithin)))
	recoverReport := nw.phase("end")
	end := nw.live()
	nw.close(t)

	reports := []*phaseReport{cleanReport, ramp, attackReport, recoverReport}
	t.Log("\n" + table(reports))
	for _, r := range reports {
		for _, f := range slices.Sorted(maps.Keys(r.Failures)) {
			t.Logf("%s: %d× %s", r.Name, r.Failures[f], f)
		}
	}
	t.Logf("live heap: clean %s, %s after the attack stopped (%v), at the end %s; RSS at the end %s; goroutines clean %d, at the end %d",
		mib(base.LiveHeap), mib(after.LiveHeap), backAfter.Round(100*time.Millisecond), mib(end.LiveHeap), mib(end.RSS), base.Goroutines, end.Goroutines)

	// The attack happened, in full.
	s := &atk.stats
	if !up {
		t.Errorf("the attack never got going: %s", s.String())
	}
	for what, n := range map[string]int64{
		"ADD_PROVIDER messages": s.ProvidersSent.Load(), "1 MiB frames started": s.FramesOpened.Load(),
		"idle streams": s.IdleOpened.Load(), "dripped streams": s.DripStreams.Load(), "refused requests": s.Refusals.Load(),
	} {
		if n < 100 {
			t.Errorf("the attacker got %d %s through; the flood was too weak to test anything", n, what)
		}
	}
	// What it could not do.
	if n := s.RefusalReceipt.Load(); n > 0 {
		t.Errorf("%d refused requests got a signed receipt", n)
	}
	if n := s.RefusedOther.Load(); n > 0 {
		t.Errorf("%d requests of unregistered peers were answered other than FORBIDDEN or OVERLOADED (the last: %v)", n, s.otherStatus.Load())
	}
	if longest := time.Duration(s.DripLongestMs.Load()) * time.Millisecond; longest > 13*time.Second {
		t.Errorf("a request dripped a byte a second was read for %v (the limit is 10 s)", longest)
	}
	// The property.
	// The clean run's peak is the process's, from its start to the
	// attack's (VmHWM); the attacked peak, the sampled peak of the ramp and
	// the attack.
	attacked := max(ramp.PeakRSS, attackReport.PeakRSS)
	if limit := min(maxRSSRatio*float64(cleanReport.HighWater), maxRSS); float64(attacked) > limit {
		t.Errorf("peak RSS under attack %s, over the bound %s (2× the clean run's peak %s, at most 512 MiB)", mib(attacked), mib(uint64(limit)), mib(cleanReport.HighWater))
	}
	for _, kind := range []string{probeQuery, probeDHT, probeKnowledge} {
		if r := attackReport.Registered[kind]; r.All < 10 || r.fraction() < minRegistered {
			t.Errorf("registered %s probes under attack: %v succeeded, want at least %.0f%%", kind, r, 100*minRegistered)
		}
	}
	for _, kind := range []string{probeConnect, probeQuery, probeDHT, probeKnowledge} {
		if r := attackReport.Newcomer[kind]; r.All < 3 || r.fraction() < minNewcomer {
			t.Errorf("newcomers' %s probes under attack: %v succeeded, want at least %.0f%%", kind, r, 100*minNewcomer)
		}
	}
	if attackReport.Epochs < 1 || attackReport.ValidatorQueries < 1 || attackReport.MinersPaid < 1 {
		t.Errorf("under attack the subnet ran %d epochs, validators got %d answers, %d miners paid", attackReport.Epochs, attackReport.ValidatorQueries, attackReport.MinersPaid)
	}
	if backAfter < 0 || backAfter > recoverWithin {
		t.Errorf("live heap %s %v after the attack stopped, not back to the clean level %s (+%s of provider records kept by design) within %v", mib(after.LiveHeap), recoverWithin+5*time.Second, mib(base.LiveHeap), mib(keptByDesign), recoverWithin)
	}
}

// child is the network's process.
type child struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    chan message
	stderr *lockedBuffer
	ready  *ready
	t      *testing.T
	ctx    context.Context
}

// startNetwork starts the test binary as the network's process and waits
// until it is up.
func startNetwork(t *testing.T, ctx context.Context) *child {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), networkEnv+"=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, out: make(chan message, 16), stderr: &lockedBuffer{}, t: t, ctx: ctx}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	go func() {
		defer close(c.out)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m message
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				c.stderr.Write(fmt.Appendf(nil, "undecodable line %q: %v\n", sc.Text(), err))
				return
			}
			c.out <- m
		}
	}()
	c.ready = c.next(2 * time.Minute).Ready
	if c.ready == nil {
		c.fail("the network did not say it was ready")
	}
	return c
}

// next is the child's next message.
func (c *child) next(within time.Duration) message {
	c.t.Helper()
	select {
	case m, ok := <-c.out:
		if !ok {
			c.fail("the network's process ended")
		}
		return m
	case <-time.After(within):
		c.fail(fmt.Sprintf("no word from the network's process in %v", within))
	case <-c.ctx.Done():
		c.fail("the test ran out of time")
	}
	return message{}
}

func (c *child) fail(why string) {
	c.t.Helper()
	c.t.Fatalf("%s; its stderr:\n%s", why, c.stderr.tail(8<<10))
}

func (c *child) send(cmd string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, cmd+"\n"); err != nil {
		c.fail(fmt.Sprintf("writing %q: %v", cmd, err))
	}
}

// phase ends the current phase, begins name, and returns the report of
// the one that ended.
func (c *child) phase(name string) *phaseReport {
	c.t.Helper()
	c.send("phase " + name)
	r := c.next(time.Minute).Phase
	if r == nil {
		c.fail("expected a phase report")
	}
	return r
}

// heapProfile has the child write a heap profile to file.
func (c *child) heapProfile(file string) {
	c.t.Helper()
	c.send("heap " + file)
	c.next(time.Minute)
}

// live reads the child's memory after collections.
func (c *child) live() reading {
	c.t.Helper()
	c.send("live")
	r := c.next(time.Minute).Live
	if r == nil {
		c.fail("expected a memory reading")
	}
	return *r
}

// close ends the child and checks it exits cleanly.
func (c *child) close(t *testing.T) {
	t.Helper()
	c.in.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the network's process: %v; its stderr:\n%s", err, c.stderr.tail(8<<10))
		}
	case <-time.After(time.Minute):
		t.Errorf("the network's process did not exit a minute after its input ended")
	}
}

// lockedBuffer collects the child's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// wait lets d pass (the length of a phase being measured), or until ctx
// ends.
func wait(ctx context.Context, d time.Duration) {
	if d > 0 {
		pause(ctx, d)
	}
}

// waitFor polls cond every 50 ms for up to d.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		pause(ctx, 50*time.Millisecond)
	}
	return true
}

// table prints the phases as BENCHMARKS.md's table does.
func table(reports []*phaseReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| phase | s | peak RSS (since start) | peak heap | peak goroutines | epochs | validator answers | miners paid | registered query / DHT / knowledge | newcomer connect / query / DHT / knowledge |\n")
	fmt.Fprintf(&b, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range reports {
		fmt.Fprintf(&b, "| %s | %.0f | %s (%s) | %s | %d | %d | %d | %d/%d | %s / %s / %s | %s / %s / %s / %s |\n",
			r.Name, r.Seconds, mib(r.PeakRSS), mib(r.HighWater), mib(r.PeakHeap), r.PeakGoroutines, r.Epochs, r.ValidatorQueries, r.MinersPaid, r.Miners,
			r.Registered[probeQuery], r.Registered[probeDHT], r.Registered[probeKnowledge],
			r.Newcomer[probeConnect], r.Newcomer[probeQuery], r.Newcomer[probeDHT], r.Newcomer[probeKnowledge])
	}
	return b.String()
}

func mib(n uint64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
