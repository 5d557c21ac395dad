package abci

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chain/chaintest"
	"github.com/cybertensor/cybertensor/wallet"
)

func testKey(i int) *wallet.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("abci test key %d", i)))
	k, _ := wallet.PrivateKeyFromBytes(seed[:])
	return k
}

func addrOf(k *wallet.PrivateKey) wallet.Address { return k.PublicKey().Address() }

func testGenesis(keys []*wallet.PrivateKey) chain.Genesis {
	var bal []chain.GenesisBalance
	for _, k := range keys {
		bal = append(bal, chain.GenesisBalance{Address: addrOf(k), Amount: 1e13})
	}
	g := chain.LocalnetGenesis("comet-test", addrOf(keys[0]), bal)
	g.SubnetDefaults.Tempo = 5
	g.Subnets = []chain.GenesisSubnet{{Name: "alpha", Owner: addrOf(keys[0])}}
	return g
}

const childEnv = "CYBERTENSOR_ABCI_CHILD_HOME"

// TestMain doubles as a validator process: stopping CometBFT in-process
// while its reactors run can panic inside CometBFT (a closed block store),
// so the testnet's validators run as child processes and are killed.
func TestMain(m *testing.M) {
	if home := os.Getenv(childEnv); home != "" {
		if _, err := StartNode(home, chaintest.StakeEpoch, slog.New(slog.DiscardHandler)); err != nil {
			fmt.Println("child:", err)
			os.Exit(3)
		}
		select {}
	}
	os.Exit(m.Run())
}

type testnet struct {
	t     *testing.T
	homes []string
	rpc   []string
	nodes []*exec.Cmd
}

func startTestnet(t *testing.T, n int, gen chain.Genesis) *testnet {
	t.Helper()
	dir := chaintest.RemovableDir(t)
	tn := &testnet{t: t}
	var opts []InitOptions
	ports := chaintest.FreePorts(t, 2*n) // each node's RPC and P2P
	for i := range n {
		tn.homes = append(tn.homes, filepath.Join(dir, fmt.Sprintf("node%d", i)))
		rpc := fmt.Sprintf("tcp://127.0.0.1:%d", ports[2*i])
		tn.rpc = append(tn.rpc, rpc)
		opts = append(opts, InitOptions{
			Moniker: fmt.Sprintf("v%d", i), P2PAddress: fmt.Sprintf("tcp://127.0.0.1:%d", ports[2*i+1]),
			RPCAddress: rpc, BlockTime: 100 * time.Millisecond,
		})
	}
	if _, err := Testnet(tn.homes, gen, opts); err != nil {
		t.Fatal(err)
	}
	tn.nodes = make([]*exec.Cmd, n)
	for i := range n {
		tn.start(i)
	}
	t.Cleanup(func() {
		for i := range tn.nodes {
			tn.stop(i)
		}
	})
	return tn
}

func (tn *testnet) start(i int) {
	tn.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+tn.homes[i])
	if err := cmd.Start(); err != nil {
		tn.t.Fatalf("node %d: %v", i, err)
	}
	tn.nodes[i] = cmd
}

// stop kills validator i (kill -9).
func (tn *testnet) stop(i int) {
	if tn.nodes[i] != nil {
		tn.nodes[i].Process.Signal(syscall.SIGKILL)
		tn.nodes[i].Wait()
		tn.nodes[i] = nil
	}
}

func (tn *testnet) client(i int) *rpchttp.HTTP {
	tn.t.Helper()
	c, err := rpchttp.New(tn.rpc[i], "/websocket")
	if err != nil {
		tn.t.Fatal(err)
	}
	return c
}

func (tn *testnet) height(i int) int64 {
	st, err := tn.client(i).Status(context.Background())
	if err != nil {
		return -1
	}
	return st.SyncInfo.LatestBlockHeight
}

// waitAppHeight waits until node i's application has committed height h.
func (tn *testnet) waitAppHeight(i int, h int64) {
	tn.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		info, err := tn.client(i).ABCIInfo(context.Background())
		if err == nil && info.Response.LastBlockHeight >= h {
			return
		}
		if time.Now().After(deadline) {
			tn.t.Fatalf("node %d's application has not committed height %d", i, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHeight waits until node i reaches height h.
func (tn *testnet) waitHeight(i int, h int64) {
	tn.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for tn.height(i) < h {
		if time.Now().After(deadline) {
			tn.t.Fatalf("node %d stuck at height %d, want %d", i, tn.height(i), h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFourValidatorsAgreeSurviveAFailureAndCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 4-validator CometBFT network")
	}
	keys := []*wallet.PrivateKey{testKey(0), testKey(1), testKey(2), testKey(3)}
	tn := startTestnet(t, 4, testGenesis(keys))
	tn.waitHeight(0, 2)
	ctx := context.Background()

	// A stream of random transactions, valid and invalid, to every node.
	r := rand.New(rand.NewPCG(3, 4))
	seq := map[wallet.Address]uint64{}
	send := func(n int) {
		for range n {
			k := keys[r.IntN(len(keys))]
			var msg *chainpb.Msg
			to := addrOf(keys[r.IntN(len(keys))])
			hot := addrOf(testKey(100 + r.IntN(6)))
			switch r.IntN(4) {
			case 0:
				msg = &chainpb.Msg{Sum: &chainpb.Msg_Transfer{Transfer: &chainpb.Transfer{To: to[:], Amount: uint64(r.IntN(1000))}}}
			case 1:
				msg = &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: hot[:]}}}
			case 2:
				msg = &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: hot[:], Amount: uint64(1 + r.IntN(1e6))}}}
			default:
				msg = &chainpb.Msg{Sum: &chainpb.Msg_Faucet{Faucet: &chainpb.Faucet{}}}
			}
			raw, err := chain.SignTx(k, "comet-test", seq[addrOf(k)], msg)
			if err != nil {
				t.Fatal(err)
			}
			target := r.IntN(len(tn.nodes))
			for tn.nodes[target] == nil {
				target = (target + 1) % len(tn.nodes)
			}
			res, err := tn.client(target).BroadcastTxSync(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			if res.Code == 0 {
				seq[addrOf(k)]++
			}
		}
	}
	send(40)
	h := tn.height(0) + 5
	for i := range 4 {
		tn.waitHeight(i, h)
	}
	tn.assertSameAppHashes(h)

	// A registered hotkey commits; every node answers the same, and
	// refused commitments (too long, too soon) keep the app hashes equal.
	hk := testKey(200)
	want := tn.commitments(keys, seq, hk)
	h = tn.height(0) + 2
	for i := range 4 {
		tn.waitHeight(i, h)
	}
	tn.assertSameAppHashes(h)

	// hk opens as a delegate, lowers its take, takes a nominator and lends
	// half its stake weight to a child; refused changes keep app hashes
	// equal, and an epoch pays through the child back to hk.
	ck := testKey(201)
	delegation := tn.takesAndChildren(keys, seq, hk, ck)
	h = tn.height(0) + 2
	for i := range 4 {
		tn.waitHeight(i, h)
	}
	tn.assertSameAppHashes(h)

	// The owner runs two mechanisms; hk weights ck on mechanism 1; a
	// stranger's SetMechanisms and weights on a third mechanism are
	// refused; every node answers the same per-mechanism weights.
	mechanisms := tn.mechanisms(keys, seq, hk, ck)

	// Kill one validator: the other three (3/4 of the power > 2/3) go on.
	tn.stop(3)
	send(20)
	h2 := tn.height(0) + 8
	for i := range 3 {
		tn.waitHeight(i, h2)
	}
	// Restart it: it recovers from the kill, replays what it missed and
	// catches up.
	tn.start(3)
	tn.waitHeight(3, h2)
	tn.assertSameAppHashes(h2)
	// The restarted validator replayed the commitment, the takes and the
	// children too.
	tn.assertCommitment(addrOf(hk), want)
	if got := tn.assertDelegation(addrOf(hk), addrOf(ck)); got != delegation {
		tn.t.Fatalf("after the restart: %s, before: %s", got, delegation)
	}
	if got := tn.assertMechanisms(); got != mechanisms {
		tn.t.Fatalf("mechanisms after the restart: %s, before: %s", got, mechanisms)
	}
}

// mechanisms runs the mechanisms scenario on subnet 1: its owner
// (keys[0]) sets shares 2 and 1, which apply at the next epoch block; hk
// then weights ck on mechanism 1. A stranger's SetMechanisms and weights
// on mechanism 2 are refused at CheckTx. It returns what every node
// answers (assertMechanisms).
func (tn *testnet) mechanisms(keys []*wallet.PrivateKey, seq map[wallet.Address]uint64, hk, ck *wallet.PrivateKey) string {
	tn.t.Helper()
	owner, stranger := keys[0], keys[2]
	seq[addrOf(owner)], seq[addrOf(stranger)] = tn.sequence(addrOf(owner)), tn.sequence(addrOf(stranger))
	set := &chainpb.Msg{Sum: &chainpb.Msg_SetMechanisms{SetMechanisms: &chainpb.SetMechanisms{Netuid: 1, Shares: []uint32{2, 1}}}}
	if code, _ := tn.broadcast(1, stranger, seq[addrOf(stranger)], set); code != chain.CodeOf(chain.ErrNotSubnetOwner) {
		tn.t.Fatalf("a stranger's SetMechanisms: code %d", code)
	}
	code, hash := tn.broadcast(0, owner, seq[addrOf(owner)], set)
	if code != 0 {
		tn.t.Fatalf("SetMechanisms: code %d", code)
	}
	seq[addrOf(owner)]++
	if code, _ := tn.included(0, hash); code != 0 {
		tn.t.Fatalf("SetMechanisms in a block: code %d", code)
	}
	// Every running node's application has applied them before weights
	// on mechanism 1 go to any node's CheckTx.
	for i, n := range tn.nodes {
		if n == nil {
			continue
		}
		var info chain.MechanismsInfo
		deadline := time.Now().Add(30 * time.Second)
		for !tn.queryJSON(i, "/mechanisms/1", &info) || info.Count() != 2 {
			if time.Now().After(deadline) {
				tn.t.Fatalf("node %d: mechanisms not applied: %+v", i, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var child chain.NeuronInfo
	if !tn.queryJSON(0, fmt.Sprintf("/neuron/1/%s", addrOf(ck)), &child) {
		tn.t.Fatal("ck is not registered")
	}
	hot := addrOf(hk)
	weights := func(mech uint32) *chainpb.Msg {
		return &chainpb.Msg{Sum: &chainpb.Msg_SetWeights{SetWeights: &chainpb.SetWeights{Netuid: 1, Uids: []uint32{uint32(child.UID)}, Values: []uint32{1}, Mechanism: mech}}}
	}
	hseq := tn.sequence(hot)
	if code, _ := tn.broadcast(2, hk, hseq, weights(2)); code != chain.CodeOf(chain.ErrMechanismDoesNotExist) {
		tn.t.Fatalf("weights on mechanism 2 of 2: code %d", code)
	}
	code, hash = tn.broadcast(2, hk, hseq, weights(1))
	if code != 0 {
		tn.t.Fatalf("weights on mechanism 1: code %d", code)
	}
	if code, _ := tn.included(2, hash); code != 0 {
		tn.t.Fatalf("weights on mechanism 1 in a block: code %d", code)
	}
	return tn.assertMechanisms()
}

// assertMechanisms checks every running node answers subnet 1's shares
// and mechanism 1's weights identically (the incentive moves every epoch;
// the app hashes already prove the nodes agree on it) and returns them.
func (tn *testnet) assertMechanisms() string {
	tn.t.Helper()
	var agreed string
	for i, n := range tn.nodes {
		if n == nil {
			continue
		}
		var info chain.MechanismsInfo
		var rows [][]chain.Entry
		if !tn.queryJSON(i, "/mechanisms/1", &info) || !tn.queryJSON(i, "/weights/1/1", &rows) {
			tn.t.Fatalf("node %d: no mechanisms answer", i)
		}
		// Only the rows set: registrations add empty ones.
		set := map[int][]chain.Entry{}
		for uid, r := range rows {
			if len(r) > 0 {
				set[uid] = r
			}
		}
		if info.Count() != 2 || info.Shares[0] != 2 || len(set) != 1 {
			tn.t.Fatalf("node %d: mechanisms %+v, mechanism 1 weights %v", i, info, rows)
		}
		b, _ := json.Marshal(map[string]any{"shares": info.Shares, "weights": set})
		if agreed == "" {
			agreed = string(b)
		} else if agreed != string(b) {
			tn.t.Fatalf("node %d answers %s, another node %s", i, b, agreed)
		}
	}
	return agreed
}

// Child hotkey scenario numbers: hk's own stake, the share it lends ck
// (half, of 2^64−1), ck's childkey take (10%) and hk's lowered take.
const (
	parentStake  = 1_000_000_000_000
	halfLent     = 1<<63 - 1
	childkeyTake = 6553
	loweredTake  = 5000
)

// takesAndChildren runs the delegation and child-hotkey scenario on subnet
// 1: keys[1] stakes on hk (registered by the commitments scenario), opens
// it as a delegate and lowers its take; keys[3] stakes on it as a
// nominator; keys[2] registers ck and sets its childkey take; hk lends ck
// half its stake weight. A raise of the take inside take_rate_limit, a
// childkey take above the maximum and a sixth child are refused at
// CheckTx. It waits until the children apply and an epoch has paid through
// ck back to hk, and returns what every node answers (assertDelegation).
func (tn *testnet) takesAndChildren(keys []*wallet.PrivateKey, seq map[wallet.Address]uint64, hk, ck *wallet.PrivateKey) string {
	tn.t.Helper()
	hot, child := addrOf(hk), addrOf(ck)
	parentCold, childCold, nominator := keys[1], keys[2], keys[3]
	for _, k := range []*wallet.PrivateKey{parentCold, childCold, nominator} {
		seq[addrOf(k)] = tn.sequence(addrOf(k))
	}
	var sent [][]byte
	send := func(k *wallet.PrivateKey, msg *chainpb.Msg) {
		tn.t.Helper()
		code, hash := tn.broadcast(0, k, seq[addrOf(k)], msg)
		if code != 0 {
			tn.t.Fatalf("check %v: code %d", msg, code)
		}
		seq[addrOf(k)]++
		sent = append(sent, hash)
	}
	// settle waits until every transaction sent is in a block: CheckTx
	// reads the committed state, so what builds on them waits for it.
	settle := func() {
		tn.t.Helper()
		for _, tx := range sent {
			if code, height := tn.included(0, tx); code != 0 {
				tn.t.Fatalf("tx %X: code %d at %d", tx, code, height)
			}
		}
		sent = nil
	}
	refused := func(k *wallet.PrivateKey, msg *chainpb.Msg, want *chain.TxError) {
		tn.t.Helper()
		if code, _ := tn.broadcast(1, k, seq[addrOf(k)], msg); code != chain.CodeOf(want) {
			tn.t.Fatalf("%v: code %d, want %d (%s)", msg, code, chain.CodeOf(want), want.Name)
		}
	}
	msg := func(m any) *chainpb.Msg {
		switch m := m.(type) {
		case *chainpb.AddStake:
			return &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: m}}
		case *chainpb.BecomeDelegate:
			return &chainpb.Msg{Sum: &chainpb.Msg_BecomeDelegate{BecomeDelegate: m}}
		case *chainpb.SetTake:
			return &chainpb.Msg{Sum: &chainpb.Msg_SetTake{SetTake: m}}
		case *chainpb.BurnedRegister:
			return &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: m}}
		case *chainpb.SetChildkeyTake:
			return &chainpb.Msg{Sum: &chainpb.Msg_SetChildkeyTake{SetChildkeyTake: m}}
		case *chainpb.SetChildren:
			return &chainpb.Msg{Sum: &chainpb.Msg_SetChildren{SetChildren: m}}
		}
		tn.t.Fatalf("no message for %T", m)
		return nil
	}

	send(parentCold, msg(&chainpb.AddStake{Hotkey: hot[:], Amount: parentStake}))
	send(parentCold, msg(&chainpb.BecomeDelegate{Hotkey: hot[:]}))
	send(childCold, msg(&chainpb.BurnedRegister{Netuid: 1, Hotkey: child[:]}))
	settle()
	send(parentCold, msg(&chainpb.SetTake{Hotkey: hot[:], Take: loweredTake}))
	send(childCold, msg(&chainpb.SetChildkeyTake{Netuid: 1, Hotkey: child[:], Take: childkeyTake}))
	send(nominator, msg(&chainpb.AddStake{Hotkey: hot[:], Amount: parentStake / 4}))
	send(parentCold, msg(&chainpb.SetChildren{Netuid: 1, Hotkey: hot[:], Children: []*chainpb.Child{{Hotkey: child[:], Proportion: halfLent}}}))
	settle()

	// Refused at CheckTx: a raise inside take_rate_limit, a childkey take
	// above max_childkey_take, a sixth child.
	refused(parentCold, msg(&chainpb.SetTake{Hotkey: hot[:], Take: loweredTake + 1}), chain.ErrTakeRateLimit)
	refused(childCold, msg(&chainpb.SetChildkeyTake{Netuid: 1, Hotkey: child[:], Take: 11797}), chain.ErrInvalidChildkeyTake)
	var six []*chainpb.Child
	for i := range 6 {
		c := addrOf(testKey(300 + i))
		six = append(six, &chainpb.Child{Hotkey: c[:], Proportion: 1000})
	}
	refused(parentCold, msg(&chainpb.SetChildren{Netuid: 1, Hotkey: hot[:], Children: six}), chain.ErrTooManyChildren)
	return tn.assertDelegation(hot, child)
}

// delegationView is the part of the delegation and children answers that
// stays put once the scenario settled (stake and payouts grow every
// epoch, and app hashes already prove the nodes agree on them).
type delegationView struct {
	Take           uint16        `json:"take"`
	Delegate       bool          `json:"delegate"`
	Nominators     int           `json:"nominators"`
	Children       []chain.Child `json:"children"`
	ChildParents   []chain.Child `json:"child_parents"`
	ChildkeyTake   uint16        `json:"childkey_take"`
	PendingApplies bool          `json:"pending"`
}

// assertDelegation polls every running node until the children have
// applied and an epoch has paid through the child: ck's effective stake
// includes what hk lends, ck (no stake of its own) kept its childkey take,
// and hk has payouts. It checks the settled answers are identical on every
// node and returns them as JSON.
func (tn *testnet) assertDelegation(hot, child wallet.Address) string {
	tn.t.Helper()
	var agreed string
	for i, n := range tn.nodes {
		if n == nil {
			continue
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			var d chain.DelegateInfo
			var pc, cc chain.ChildKeysInfo
			ok := tn.queryJSON(i, "/delegate/"+hot.String(), &d) &&
				tn.queryJSON(i, fmt.Sprintf("/children/1/%s", hot), &pc) &&
				tn.queryJSON(i, fmt.Sprintf("/children/1/%s", child), &cc)
			applied := ok && pc.Pending == nil && len(pc.Children) == 1 && len(cc.Parents) == 1 &&
				cc.EffectiveStake >= cc.Stake+pc.Stake/2-1 && pc.EffectiveStake <= pc.Stake-pc.Stake/2+1
			// ck has no stake of its own: any it holds is its take of
			// dividends earned with hk's lent stake weight.
			paid := ok && cc.Stake > 0 && len(d.Payouts) > 0 && d.ReturnPer1000 > 0
			if applied && paid {
				v := delegationView{Take: d.Take, Delegate: d.Delegate, Nominators: d.Nominators, Children: pc.Children,
					ChildParents: cc.Parents, ChildkeyTake: cc.ChildkeyTake, PendingApplies: cc.Pending != nil}
				if v.Take != loweredTake || !v.Delegate || v.Nominators != 2 || v.ChildkeyTake != childkeyTake ||
					v.Children[0].Hotkey != child || v.Children[0].Proportion != halfLent || v.ChildParents[0].Hotkey != hot {
					tn.t.Fatalf("node %d: %+v", i, v)
				}
				b, _ := json.Marshal(v)
				if agreed == "" {
					agreed = string(b)
				} else if agreed != string(b) {
					tn.t.Fatalf("node %d answers %s, another node %s", i, b, agreed)
				}
				break
			}
			if time.Now().After(deadline) {
				tn.t.Fatalf("node %d: children not applied or no payout through them: delegate %+v, parent %+v, child %+v", i, d, pc, cc)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return agreed
}

// queryJSON runs an ABCI query on node i and decodes a found answer into
// v; false if the node has no answer (yet).
func (tn *testnet) queryJSON(i int, path string, v any) bool {
	tn.t.Helper()
	code, b := tn.abciQuery(i, path)
	if code != CodeOK {
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		tn.t.Fatalf("node %d %s: %v: %s", i, path, err, b)
	}
	return true
}

func setCommitmentMsg(hotkey wallet.Address, data []byte) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetCommitment{SetCommitment: &chainpb.SetCommitment{Netuid: 1, Hotkey: hotkey[:], Data: data}}}
}

// abciQuery runs an ABCI query on node i and returns its code and value.
func (tn *testnet) abciQuery(i int, path string) (uint32, []byte) {
	tn.t.Helper()
	res, err := tn.client(i).ABCIQuery(context.Background(), path, nil)
	if err != nil {
		tn.t.Fatalf("node %d query %s: %v", i, path, err)
	}
	return res.Response.Code, res.Response.Value
}

// sequence reads addr's next sequence number from node 0.
func (tn *testnet) sequence(a wallet.Address) uint64 {
	tn.t.Helper()
	code, v := tn.abciQuery(0, "/account/"+a.String())
	if code == CodeNotFound {
		return 0
	}
	var acc chain.Account
	if code != CodeOK || json.Unmarshal(v, &acc) != nil {
		tn.t.Fatalf("account %s: code %d %s", a, code, v)
	}
	return acc.Sequence
}

// broadcast sends msg signed by k with sequence n to node i and returns
// its CheckTx code.
func (tn *testnet) broadcast(i int, k *wallet.PrivateKey, n uint64, msg *chainpb.Msg) (uint32, []byte) {
	tn.t.Helper()
	raw, err := chain.SignTx(k, "comet-test", n, msg)
	if err != nil {
		tn.t.Fatal(err)
	}
	res, err := tn.client(i).BroadcastTxSync(context.Background(), raw)
	if err != nil {
		tn.t.Fatalf("node %d broadcast: %v", i, err)
	}
	return res.Code, res.Hash
}

// included waits until tx hash is in a block on node i and returns its
// result code and height.
//
// It returns only once every running node's application has committed that
// block: CheckTx on any node reads its committed state, so a transaction
// that builds on this one may then go to any node. (A node's block store,
// which Status reports, can be a block ahead of its application.)
func (tn *testnet) included(i int, hash []byte) (uint32, int64) {
	tn.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if res, err := tn.client(i).Tx(context.Background(), hash, false); err == nil {
			for j := range tn.nodes {
				if tn.nodes[j] != nil {
					tn.waitAppHeight(j, res.Height)
				}
			}
			return res.TxResult.Code, res.Height
		}
		if time.Now().After(deadline) {
			tn.t.Fatalf("tx %X not included on node %d", hash, i)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// commitments runs the commitment scenario on subnet 1: the root sets
// commitment_rate_limit, keys[1] registers hk, hk commits; a 513-byte
// commitment and commitments inside the rate limit are refused. It returns
// the commitment every node answers with.
func (tn *testnet) commitments(keys []*wallet.PrivateKey, seq map[wallet.Address]uint64, hk *wallet.PrivateKey) chain.CommitmentInfo {
	tn.t.Helper()
	hot := addrOf(hk)
	root, cold := keys[0], keys[1]
	// The stream's transactions are all in blocks by now: read the
	// sequences back rather than trusting the stream's bookkeeping.
	seq[addrOf(root)], seq[addrOf(cold)] = tn.sequence(addrOf(root)), tn.sequence(addrOf(cold))
	send := func(i int, k *wallet.PrivateKey, msg *chainpb.Msg) []byte {
		code, hash := tn.broadcast(i, k, seq[addrOf(k)], msg)
		if code != 0 {
			tn.t.Fatalf("check %v: code %d", msg, code)
		}
		seq[addrOf(k)]++
		return hash
	}
	sudo := send(0, root, &chainpb.Msg{Sum: &chainpb.Msg_SudoSetHyperparam{SudoSetHyperparam: &chainpb.SudoSetHyperparam{Netuid: 1, Name: "commitment_rate_limit", Value: 1000}}})
	reg := send(1, cold, &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: hot[:]}}})
	for _, tx := range [][]byte{sudo, reg} {
		if code, _ := tn.included(0, tx); code != 0 {
			tn.t.Fatalf("setup tx %X: code %d", tx, code)
		}
	}

	// Too long: refused by CheckTx, never in a block.
	hseq := tn.sequence(hot)
	if code, _ := tn.broadcast(2, hk, hseq, setCommitmentMsg(hot, make([]byte, chain.MaxCommitmentLen+1))); code != chain.CodeOf(chain.ErrInvalidCommitment) {
		tn.t.Fatalf("513-byte commitment: code %d", code)
	}
	// The commitment, and right behind it a second one: both pass CheckTx;
	// the second is refused inside the block if it shares the first's
	// block, or dropped from the mempool on recheck otherwise.
	cid := []byte("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	code, first := tn.broadcast(2, hk, hseq, setCommitmentMsg(hot, cid))
	if code != 0 {
		tn.t.Fatalf("commitment: code %d", code)
	}
	code, second := tn.broadcast(2, hk, hseq+1, setCommitmentMsg(hot, []byte("model:v2")))
	if code != 0 {
		tn.t.Fatalf("second commitment: CheckTx code %d", code)
	}
	if code, height := tn.included(2, first); code != 0 {
		tn.t.Fatalf("commitment: code %d at %d", code, height)
	}
	want := tn.assertCommitment(hot, chain.CommitmentInfo{})
	if string(want.Data) != string(cid) || want.Hotkey != hot {
		tn.t.Fatalf("commitment %+v", want)
	}
	// The second commitment is settled once the block after the first's is
	// (recheck runs on every commit).
	for i := range 4 {
		tn.waitHeight(i, int64(want.Block)+1)
	}
	if res, err := tn.client(2).Tx(context.Background(), second, false); err == nil {
		if res.TxResult.Code != chain.CodeOf(chain.ErrCommitmentRateLimit) {
			tn.t.Fatalf("second commitment in block %d: code %d", res.Height, res.TxResult.Code)
		}
		tn.t.Logf("second commitment refused in block %d", res.Height)
	} else {
		tn.t.Logf("second commitment dropped from the mempool")
	}
	// Too soon, after the commitment is in a block: refused by CheckTx.
	if code, _ := tn.broadcast(3, hk, tn.sequence(hot), setCommitmentMsg(hot, []byte("model:v3"))); code != chain.CodeOf(chain.ErrCommitmentRateLimit) {
		tn.t.Fatalf("commitment inside the rate limit: code %d", code)
	}
	return tn.assertCommitment(hot, want)
}

// assertCommitment polls every running node until it answers the
// /commitment and /commitments queries for hotkey on subnet 1, checks the
// answers are byte-identical across nodes (and equal want, unless want is
// zero), and returns the commitment.
func (tn *testnet) assertCommitment(hotkey wallet.Address, want chain.CommitmentInfo) chain.CommitmentInfo {
	tn.t.Helper()
	paths := []string{"/commitment/1/" + hotkey.String(), "/commitments/1"}
	answers := make([][]byte, len(paths))
	for i, n := range tn.nodes {
		if n == nil {
			continue
		}
		deadline := time.Now().Add(30 * time.Second)
		for j, path := range paths {
			code, v := tn.abciQuery(i, path)
			for code != CodeOK || (j == 1 && string(v) == "[]") {
				if time.Now().After(deadline) {
					tn.t.Fatalf("node %d %s: code %d %s", i, path, code, v)
				}
				time.Sleep(20 * time.Millisecond)
				code, v = tn.abciQuery(i, path)
			}
			if answers[j] == nil {
				answers[j] = v
			} else if string(answers[j]) != string(v) {
				tn.t.Fatalf("node %d %s: %s, another node %s", i, path, v, answers[j])
			}
		}
	}
	var got chain.CommitmentInfo
	var list []chain.CommitmentInfo
	if err := json.Unmarshal(answers[0], &got); err != nil {
		tn.t.Fatal(err)
	}
	if err := json.Unmarshal(answers[1], &list); err != nil || len(list) != 1 || string(list[0].Data) != string(got.Data) || list[0].Block != got.Block {
		tn.t.Fatalf("commitments %s %v", answers[1], err)
	}
	if want.Hotkey != (wallet.Address{}) && (string(got.Data) != string(want.Data) || got.Block != want.Block || got.UID != want.UID) {
		tn.t.Fatalf("commitment %+v, want %+v", got, want)
	}
	return got
}

// assertSameAppHashes compares block headers' app hashes up to height h on
// every running node.
func (tn *testnet) assertSameAppHashes(h int64) {
	tn.t.Helper()
	ctx := context.Background()
	for height := int64(1); height <= h; height++ {
		var want []byte
		for i, n := range tn.nodes {
			if n == nil {
				continue
			}
			b, err := tn.client(i).Block(ctx, &height)
			if err != nil {
				tn.t.Fatalf("node %d block %d: %v", i, height, err)
			}
			if want == nil {
				want = b.Block.Header.AppHash
			} else if string(want) != string(b.Block.Header.AppHash) {
				tn.t.Fatalf("block %d: node %d app hash %X differs from %X", height, i, b.Block.Header.AppHash, want)
			}
		}
	}
}
