package chain

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "CYBERTENSOR_CHAIN_CRASH_CHILD"

// crashChild runs in a subprocess: it opens the database and commits
// blocks of transfers forever, printing "committed HEIGHT APPHASH" after
// each commit, until it is killed.
func crashChild(path string) {
	keys := propertyKeys()
	gen := testGenesis(keys...)
	db, err := OpenDB(path, gen, stakeEpoch)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	s := db.State()
	out := bufio.NewWriter(os.Stdout)
	for {
		height := s.Height() + 1
		var txs [][]byte
		for i, k := range keys[:4] {
			to := addr(keys[(i+1)%len(keys)])
			raw, err := SignTx(k, testChainID, s.Account(addr(k)).Sequence, mTransfer(to, height))
			if err != nil {
				panic(err)
			}
			txs = append(txs, raw)
		}
		res, err := db.ApplyBlock(Block{Height: height, Hash: blockHashFor(height), Txs: txs})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		fmt.Fprintf(out, "committed %d %x\n", res.Height, res.AppHash)
		out.Flush()
	}
}

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	os.Exit(m.Run())
}

// Kill -9 the chain at random points while blocks commit; each restart
// must find every block the child reported committed, with its app hash.
func TestCrashLoopLosesNoCommittedBlock(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns and kills processes")
	}
	path := filepath.Join(t.TempDir(), "chain.db")
	r := rand.New(rand.NewPCG(42, 42))
	reported := map[uint64]string{}
	var last uint64
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		want := 5 + r.IntN(40)
		for i := 0; i < want && sc.Scan(); i++ {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "committed" {
				t.Fatalf("child said %q", sc.Text())
			}
			h, _ := strconv.ParseUint(f[1], 10, 64)
			reported[h] = f[2]
			last = max(last, h)
		}
		// Let it run on a random moment more, then kill it mid-write.
		time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		db, err := OpenDB(path, testGenesis(propertyKeys()...), stakeEpoch)
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		height := db.State().Height()
		if height < last {
			t.Fatalf("round %d: restored height %d, but block %d was reported committed", round, height, last)
		}
		if hexHash, ok := reported[height]; ok && hexHash != hex.EncodeToString(db.State().AppHash()) {
			t.Fatalf("round %d: app hash at %d differs from the reported one", round, height)
		}
		for h := uint64(1); h <= last; h++ {
			if _, ok, err := db.Block(h); !ok || err != nil {
				t.Fatalf("round %d: committed block %d missing: %v", round, h, err)
			}
		}
		db.Close()
	}
	if last < 30 {
		t.Fatalf("only %d blocks committed across the rounds", last)
	}
}
