package metering

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cybertensor/cybertensor/gateway"
)

const (
	crashChildEnv = "CYBERTENSOR_LEDGER_CRASH_CHILD"
	crashRoundEnv = "CYBERTENSOR_LEDGER_CRASH_ROUND"
	crashWriters  = 4
)

// crashUsage is the record with request ID r<round>-<i>.
func crashUsage(round, i int) gateway.Usage {
	u := usage(i)
	u.RequestID = fmt.Sprintf("r%d-%d", round, i)
	return u
}

// crashChild runs in a subprocess: crashWriters goroutines Record entries
// (batched) forever, printing "ok REQUESTID" after each Record that
// returned nil, until the process is killed.
func crashChild(path, roundS string) {
	round, _ := strconv.Atoi(roundS)
	l, err := OpenLedger(path, DefaultLedgerConfig())
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			for i := w; ; i += crashWriters {
				u := crashUsage(round, i)
				if err := l.Record(u); err != nil {
					fmt.Println("error", err)
					os.Exit(3)
				}
				mu.Lock()
				os.Stdout.WriteString("ok " + u.RequestID + "\n") // one write: no buffer to lose
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// Kill -9 a process recording usage at random points: after each kill,
// every Record that returned nil is in the ledger exactly once, with its
// content; the only other entries are the at most crashWriters records
// in flight at the kill; sequence numbers stay dense.
func TestLedgerSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns and kills processes")
	}
	path := filepath.Join(t.TempDir(), "usage.db")
	r := rand.New(rand.NewPCG(22, 22))
	reported := map[string]bool{}
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path, crashRoundEnv+"="+strconv.Itoa(round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		want := 20 + r.IntN(200)
		read := func() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 || f[0] != "ok" {
				t.Fatalf("child said %q", sc.Text())
			}
			reported[f[1]] = true
		}
		for i := 0; i < want && sc.Scan(); i++ {
			read()
		}
		// Kill it while its writers are mid-Record, then take what it
		// reported before dying.
		cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() {
			read()
		}
		cmd.Wait()

		l := openLedger(t, path, testLedgerConfig())
		all, err := l.All()
		if err != nil {
			t.Fatalf("round %d: reading after the kill: %v", round, err)
		}
		found := map[string]int{}
		unreported := map[int]int{}
		for i, e := range all {
			if e.Seq != uint64(i+1) {
				t.Fatalf("round %d: entry %d has sequence %d", round, i, e.Seq)
			}
			var rd, n int
			if _, err := fmt.Sscanf(e.RequestID, "r%d-%d", &rd, &n); err != nil {
				t.Fatalf("round %d: entry %d is no record of ours: %q", round, i, e.RequestID)
			}
			if !reflect.DeepEqual(e.Usage, crashUsage(rd, n)) {
				t.Fatalf("round %d: entry %s differs from what was recorded", round, e.RequestID)
			}
			found[e.RequestID]++
			if !reported[e.RequestID] {
				unreported[rd]++
			}
		}
		for id := range reported {
			if found[id] != 1 {
				t.Fatalf("round %d: reported record %s found %d times", round, id, found[id])
			}
		}
		for id, c := range found {
			if c != 1 {
				t.Fatalf("round %d: record %s found %d times", round, id, c)
			}
		}
		for rd, c := range unreported {
			if c > crashWriters {
				t.Fatalf("round %d: %d unreported entries of round %d, but only %d Records can be in flight", round, c, rd, crashWriters)
			}
		}
		t.Logf("round %d: %d reported, %d entries", round, len(reported), len(all))
		l.Close()
	}
	if len(reported) < 6*20 {
		t.Fatalf("only %d records reported", len(reported))
	}
}
