package chain

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/wallet"
)

func mIdentity(name, url, description string) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetIdentity{SetIdentity: &chainpb.SetIdentity{Name: name, Url: url, Description: description}}}
}

func mSubnetIdentity(netuid uint32, name, url, description string) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetSubnetIdentity{SetSubnetIdentity: &chainpb.SetSubnetIdentity{Netuid: netuid, Name: name, Url: url, Description: description}}}
}

// refusedKeepsAppHash applies msg signed by k, which the chain must refuse
// with want, to a state built by setup, and the same block with a transfer
// of 0 (refused, changing only k's sequence) instead to a twin built the
// same way: the app hashes must agree. Before that, CheckTx must refuse
// msg without changing any record or the app hash.
func refusedKeepsAppHash(t *testing.T, setup func(*harness), k *wallet.PrivateKey, msg *chainpb.Msg, want *TxError) {
	t.Helper()
	a, b := scenario(t), scenario(t)
	if setup != nil {
		setup(a)
		setup(b)
	}
	raw := a.tx(k, msg)
	before, beforeHash := snapshot(a.s), a.s.AppHash()
	if err := a.s.CheckTx(raw); !errors.Is(err, want) {
		t.Fatalf("CheckTx: %v, want %s", err, want.Name)
	}
	if !bytes.Equal(a.s.AppHash(), beforeHash) {
		t.Fatal("CheckTx changed the app hash")
	}
	after := snapshot(a.s)
	if len(after) != len(before) {
		t.Fatalf("CheckTx: %d records, then %d", len(before), len(after))
	}
	for key, v := range after {
		if before[key] != v {
			t.Fatalf("CheckTx changed %x", key)
		}
	}
	ra := a.block(raw)
	if ra.Txs[0].Code != want.Code {
		t.Fatalf("code %d (%s), want %s", ra.Txs[0].Code, ra.Txs[0].Error, want.Name)
	}
	rb := b.block(b.tx(k, mTransfer(addr(kPoor), 0)))
	if rb.Txs[0].Code != ErrInvalidAmount.Code {
		t.Fatalf("twin's transfer of 0: %+v", rb.Txs[0])
	}
	if !bytes.Equal(ra.AppHash, rb.AppHash) {
		t.Fatal("the refused transaction changed the app hash beyond the signer's sequence")
	}
}

// Every bound at the limit and one over, for both messages (they share
// Identity.Check).
func TestIdentityBounds(t *testing.T) {
	name64, url256, desc1024 := strings.Repeat("n", MaxIdentityNameLen), strings.Repeat("u", MaxIdentityURLLen), strings.Repeat("d", MaxIdentityDescriptionLen)
	for _, tc := range []struct {
		name            string
		n, url, descr   string
		want            *TxError
		wantStoredEmpty bool
	}{
		{"name only, one byte", "a", "", "", nil, false},
		{"all at the limit", name64, url256, desc1024, nil, false},
		{"name 65 bytes", name64 + "n", "", "", ErrInvalidIdentity, false},
		{"url 257 bytes", "a", url256 + "u", "", ErrInvalidIdentity, false},
		{"description 1025 bytes", "a", "", desc1024 + "d", ErrInvalidIdentity, false},
		{"multi-byte name at the limit", strings.Repeat("é", MaxIdentityNameLen/2), "", "", nil, false},
		{"multi-byte name one byte over", strings.Repeat("é", MaxIdentityNameLen/2) + "x", "", "", ErrInvalidIdentity, false},
		{"url without a name", "", "https://example.org", "", ErrInvalidIdentity, false},
		{"description without a name", "", "", "about", ErrInvalidIdentity, false},
		{"newline in the description", "a", "", "line one\nline two", nil, false},
		{"newline in the name", "a\nb", "", "", ErrInvalidIdentity, false},
		{"newline in the url", "a", "https://x\n", "", ErrInvalidIdentity, false},
		{"carriage return in the description", "a", "", "x\r\n", ErrInvalidIdentity, false},
		{"tab in the description", "a", "", "x\ty", ErrInvalidIdentity, false},
		{"NUL in the name", "a\x00", "", "", ErrInvalidIdentity, false},
		{"DEL in the url", "a", "https://x\x7f", "", ErrInvalidIdentity, false},
		{"C1 control in the name", "a\u0085", "", "", ErrInvalidIdentity, false},
		{"all empty removes", "", "", "", nil, true},
	} {
		for _, kind := range []string{"coldkey", "subnet"} {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				msg := mIdentity(tc.n, tc.url, tc.descr)
				get := func(h *harness) (Identity, bool) { return h.s.Identity(addr(kOwner)) }
				if kind == "subnet" {
					msg = mSubnetIdentity(1, tc.n, tc.url, tc.descr)
					get = func(h *harness) (Identity, bool) { return h.s.SubnetIdentity(1) }
				}
				if tc.want != nil {
					refusedKeepsAppHash(t, nil, kOwner, msg, tc.want)
					return
				}
				h := scenario(t)
				h.ok(kOwner, msg)
				got, ok := get(h)
				if tc.wantStoredEmpty {
					if ok {
						t.Fatalf("empty identity stored: %+v", got)
					}
					return
				}
				if want := (Identity{Name: tc.n, URL: tc.url, Description: tc.descr}); !ok || got != want {
					t.Fatalf("stored %+v %v", got, ok)
				}
			})
		}
	}
}

// Invalid UTF-8 cannot travel in a protobuf string, so Check is tested
// alone for it.
func TestIdentityCheckInvalidUTF8(t *testing.T) {
	for _, id := range []Identity{{Name: "a\xff"}, {Name: "a", URL: "\xc3"}, {Name: "a", Description: "ok\xed\xa0\x80"}} {
		if err := id.Check(); !errors.Is(err, ErrInvalidIdentity) {
			t.Errorf("%q: %v", id, err)
		}
	}
	if _, err := SignTx(kOwner, testChainID, 0, mIdentity("\xff", "", "")); err == nil {
		t.Error("a transaction with invalid UTF-8 in a string field was encoded")
	}
}

// As in subtensor, setting a coldkey identity needs a hotkey of the
// coldkey registered on some subnet; removing one does not, and a
// deregistered coldkey keeps its identity until it removes it.
func TestIdentityNeedsARegisteredHotkey(t *testing.T) {
	refusedKeepsAppHash(t, nil, kOther, mIdentity("stranger", "", ""), ErrNoRegisteredHotkey)

	// Removing what is not there is allowed and changes nothing but the
	// sequence, as a refused transfer does.
	h, twin := scenario(t), scenario(t)
	h.ok(kOther, mIdentity("", "", ""))
	twin.block(twin.tx(kOther, mTransfer(addr(kPoor), 0)))
	if !bytes.Equal(h.s.AppHash(), twin.s.AppHash()) {
		t.Fatal("removing no identity changed the state")
	}
	// Once one of its hotkeys holds a uid, the coldkey may set one.
	h.ok(kRoot, mSudo(1, "max_allowed_uids", 3))
	h.ok(kRoot, mSudo(1, "immunity_period", 0))
	h.ok(kOther, mBurned(1, addr(hFree))) // replaces uid 0 (hVal): all pruning scores are 0
	h.ok(kOther, mIdentity("other", "https://other.example", ""))
	if id, ok := h.s.Identity(addr(kOther)); !ok || id.Name != "other" {
		t.Fatalf("identity %+v %v", id, ok)
	}
	// hFree is pruned in turn: kOther has no registered hotkey left.
	uid := h.s.subnets[1].uids[addr(hFree)]
	h.s.subnets[1].neurons[uid].PruningScore = 0
	h.s.markNeuron(1, uid)
	h.ok(kOwner, mBurned(1, addr(hVal)))
	if _, ok := h.s.NeuronByHotkey(1, addr(hFree)); ok {
		t.Fatal("hFree still registered")
	}
	if id, ok := h.s.Identity(addr(kOther)); !ok || id.Name != "other" {
		t.Fatalf("identity after deregistration %+v %v", id, ok)
	}
	if res := h.block(h.tx(kOther, mIdentity("renamed", "", ""))); res.Txs[0].Code != ErrNoRegisteredHotkey.Code {
		t.Fatalf("update without a registered hotkey: %+v", res.Txs[0])
	}
	h.ok(kOther, mIdentity("", "", ""))
	if _, ok := h.s.Identity(addr(kOther)); ok {
		t.Fatal("identity not removed")
	}
}

// A hotkey registered only on the root network counts.
func TestIdentityRootRegisteredHotkeyCounts(t *testing.T) {
	h := scenario(t)
	h.ok(kOther, mBurned(1, addr(hFree)))
	h.ok(kOther, mAddStake(addr(hFree), 1_000_000))
	h.ok(kOther, mRootRegister(addr(hFree)))
	// Leave subnet 1: a newcomer replaces hFree there.
	h.ok(kRoot, mSudo(1, "max_allowed_uids", 4))
	h.ok(kRoot, mSudo(1, "immunity_period", 0))
	for uid, n := range h.s.subnets[1].neurons {
		n.PruningScore = 100
		if n.Hotkey == addr(hFree) {
			n.PruningScore = 0
		}
		h.s.markNeuron(1, uint16(uid))
	}
	h.ok(kOwner, mBurned(1, addr(testKey(14))))
	info, _ := h.s.Hotkey(addr(hFree))
	if len(info.Netuids) != 1 || info.Netuids[0] != RootNetuid {
		t.Fatalf("hFree on %v, want only the root network", info.Netuids)
	}
	h.ok(kOther, mIdentity("root validator", "", ""))
}

func TestSubnetIdentityOwnerOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		k    *wallet.PrivateKey
		msg  *chainpb.Msg
		want *TxError
	}{
		{"stranger", kOther, mSubnetIdentity(1, "mine", "", ""), ErrNotSubnetOwner},
		{"chain root", kRoot, mSubnetIdentity(1, "root's", "", ""), ErrNotSubnetOwner},
		{"subnet's hotkey", hVal, mSubnetIdentity(1, "validator's", "", ""), ErrNotSubnetOwner},
		{"stranger removing", kOther, mSubnetIdentity(1, "", "", ""), ErrNotSubnetOwner},
		{"root network", kRoot, mSubnetIdentity(0, "root", "", ""), ErrOnRootNetwork},
		{"missing subnet", kOwner, mSubnetIdentity(9, "nine", "", ""), ErrNetworkDoesNotExist},
		{"netuid above 16 bits", kOwner, mSubnetIdentity(1<<16+1, "big", "", ""), ErrNetworkDoesNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setup := func(h *harness) {
				h.ok(kOwner, mSubnetIdentity(1, "alpha", "https://alpha.example", "the first subnet"))
			}
			refusedKeepsAppHash(t, setup, tc.k, tc.msg, tc.want)
		})
	}
}

func TestSubnetIdentityQueriesAndMetagraph(t *testing.T) {
	h := scenario(t)
	if _, ok := h.s.SubnetIdentity(1); ok {
		t.Fatal("identity before any was set")
	}
	if info, _ := h.s.Subnet(1); info.Identity != nil {
		t.Fatalf("subnet info identity %+v", info.Identity)
	}
	want := Identity{Name: "alpha", URL: "https://alpha.example", Description: "text\nmore"}
	res := h.ok(kOwner, mSubnetIdentity(1, want.Name, want.URL, want.Description))
	if len(res.Events) != 1 || res.Events[0].Type != "subnet_identity_set" || res.Events[0].Attrs["netuid"] != "1" {
		t.Fatalf("events %+v", res.Events)
	}
	if got, ok := h.s.SubnetIdentity(1); !ok || got != want {
		t.Fatalf("subnet identity %+v %v", got, ok)
	}
	if info, _ := h.s.Subnet(1); info.Identity == nil || *info.Identity != want {
		t.Fatalf("subnet info identity %+v", info.Identity)
	}
	list := h.s.Subnets()
	if list[0].Identity != nil || list[1].Identity == nil || *list[1].Identity != want {
		t.Fatalf("subnets list identities %+v %+v", list[0].Identity, list[1].Identity)
	}
	// Results are copies.
	list[1].Identity.Name = "changed"
	if got, _ := h.s.SubnetIdentity(1); got.Name != "alpha" {
		t.Fatal("query result aliases the state")
	}
	h.ok(kOwner, mIdentity("Owner Labs", "https://owner.example", ""))
	for _, lite := range []bool{false, true} {
		m, _ := h.s.Metagraph(1, lite)
		if m.SubnetIdentity == nil || *m.SubnetIdentity != want {
			t.Fatalf("lite=%v metagraph subnet identity %+v", lite, m.SubnetIdentity)
		}
		if lite && m.IdentityNames != nil {
			t.Fatal("lite metagraph has identity names")
		}
		if !lite && (len(m.IdentityNames) != 3 || m.IdentityNames[0] != "Owner Labs" || m.IdentityNames[2] != "Owner Labs") {
			t.Fatalf("identity names %q", m.IdentityNames)
		}
	}
	// A neuron of a coldkey without an identity has an empty name.
	h.ok(kRoot, mSudo(1, "max_allowed_uids", 4))
	h.ok(kOther, mBurned(1, addr(hFree)))
	if m, _ := h.s.Metagraph(1, false); len(m.IdentityNames) != 4 || m.IdentityNames[3] != "" {
		t.Fatalf("identity names %q", m.IdentityNames)
	}
	// Removal.
	res = h.ok(kOwner, mSubnetIdentity(1, "", "", ""))
	if res.Events[0].Type != "subnet_identity_removed" {
		t.Fatalf("events %+v", res.Events)
	}
	if _, ok := h.s.SubnetIdentity(1); ok {
		t.Fatal("subnet identity not removed")
	}
	if m, _ := h.s.Metagraph(1, true); m.SubnetIdentity != nil {
		t.Fatal("metagraph keeps a removed identity")
	}
}

// Removing an identity removes its record: the app hash is the one of a
// twin state that never had it.
func TestIdentityRemovalLeavesNoTrace(t *testing.T) {
	a, b := scenario(t), scenario(t)
	a.ok(kOwner, mIdentity("owner", "https://owner.example", "d"))
	a.ok(kOwner, mSubnetIdentity(1, "alpha", "", ""))
	if _, ok := snapshot(a.s)[keyIdentity(addr(kOwner))]; !ok {
		t.Fatal("no coldkey identity record")
	}
	if _, ok := snapshot(a.s)[keySubnetIdentity(1)]; !ok {
		t.Fatal("no subnet identity record")
	}
	a.ok(kOwner, mIdentity("", "", ""))
	a.ok(kOwner, mSubnetIdentity(1, "", "", ""))
	// b: four refused transactions, which only count kOwner's sequence.
	for range 4 {
		b.block(b.tx(kOwner, mTransfer(addr(kPoor), 0)))
	}
	if !bytes.Equal(a.s.AppHash(), b.s.AppHash()) {
		t.Fatal("a removed identity still counts in the app hash")
	}
	for _, k := range []string{keyIdentity(addr(kOwner)), keySubnetIdentity(1)} {
		if _, ok := snapshot(a.s)[k]; ok {
			t.Fatalf("record %x left after removal", k)
		}
	}
	// Set and removed in the same block: no record, no change.
	c := scenario(t)
	c.block(c.tx(kOwner, mIdentity("brief", "", "")), c.tx(kOwner, mIdentity("", "", "")))
	d := scenario(t)
	d.block(d.tx(kOwner, mTransfer(addr(kPoor), 0)), d.tx(kOwner, mTransfer(addr(kPoor), 0)))
	if !bytes.Equal(c.s.AppHash(), d.s.AppHash()) {
		t.Fatal("an identity set and removed in one block changed the app hash")
	}
}

// Identities survive a reopen, and so does a removal: the store deletes
// the record (else the reopened state would not match the stored app
// hash).
func TestIdentitySurvivesReopen(t *testing.T) {
	sh := openStoreHarness(t, testGenesis(kRoot, kOwner, kOther))
	sh.send(kOwner, mRegisterNetwork("alpha"))
	sh.send(kOwner, mRegisterNetwork("beta"))
	sh.send(kOwner, mBurned(1, addr(hMin1)))
	sh.send(kOwner, mIdentity("owner", "https://owner.example", "line\nline"))
	sh.send(kOwner, mSubnetIdentity(1, "alpha", "", "first"))
	sh.send(kOwner, mSubnetIdentity(2, "beta", "", ""))
	sh.reopen()
	if id, ok := sh.s.Identity(addr(kOwner)); !ok || id != (Identity{"owner", "https://owner.example", "line\nline"}) {
		t.Fatalf("after reopen %+v %v", id, ok)
	}
	if id, ok := sh.s.SubnetIdentity(1); !ok || id != (Identity{Name: "alpha", Description: "first"}) {
		t.Fatalf("subnet 1 after reopen %+v %v", id, ok)
	}
	sh.send(kOwner, mSubnetIdentity(1, "", "", ""))
	sh.send(kOwner, mIdentity("", "", ""))
	sh.reopen()
	if _, ok := sh.s.Identity(addr(kOwner)); ok {
		t.Fatal("removed identity back after reopen")
	}
	if _, ok := sh.s.SubnetIdentity(1); ok {
		t.Fatal("removed subnet identity back after reopen")
	}
	if id, ok := sh.s.SubnetIdentity(2); !ok || id.Name != "beta" {
		t.Fatalf("subnet 2 after reopen %+v %v", id, ok)
	}
}

func TestIdentityEncoding(t *testing.T) {
	id := Identity{Name: "n", URL: "u", Description: "d"}
	enc := id.encode()
	got, err := decodeIdentity(enc)
	if err != nil || *got != id {
		t.Fatalf("round trip %+v %v", got, err)
	}
	long := Identity{Name: strings.Repeat("n", MaxIdentityNameLen+1)}
	for name, b := range map[string][]byte{
		"empty identity":   (&Identity{}).encode(),
		"name too long":    long.encode(),
		"truncated":        enc[:len(enc)-1],
		"trailing garbage": append(append([]byte(nil), enc...), 0),
	} {
		if _, err := decodeIdentity(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}
