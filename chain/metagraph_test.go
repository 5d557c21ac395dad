package chain

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func fieldsOf(t testing.TB, list string) MetagraphFields {
	t.Helper()
	f, err := ParseMetagraphFields(list)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParseMetagraphFields(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{"", LiteMetagraphFields.Names(), ""},
		{"lite", LiteMetagraphFields.Names(), ""},
		{"all", metagraphFieldNames, ""},
		{"uid,stake,incentive", []string{"uids", "stake", "incentive"}, ""},
		{" Incentive , UIDS ", []string{"uids", "incentive"}, ""},
		{"weights,hotkey,axon,commitment,pruning_score,rank", []string{"hotkeys", "ranks", "pruning_scores", "axons", "weights", "commitments"}, ""},
		{"lite,weights", append(LiteMetagraphFields.Names(), "weights"), ""},
		{"stake,bogus", nil, `unknown metagraph field "bogus"; valid fields: uids, hotkeys, coldkeys, stake`},
		{"stake,", nil, `unknown metagraph field ""`},
		{"stakes", nil, `unknown metagraph field "stakes"`},
	} {
		f, err := ParseMetagraphFields(tc.in)
		if tc.err != "" {
			if !errors.Is(err, ErrUnknownMetagraphField) || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "identity_names (or all, lite)") {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(f.Names(), tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, f.Names(), err, tc.want)
		}
	}
	if LiteMetagraphFields.Has(fieldWeights) || LiteMetagraphFields.Has(fieldBonds) || LiteMetagraphFields.Has(fieldCommitments) || !AllMetagraphFields.Has(LiteMetagraphFields) {
		t.Fatal("lite holds rows")
	}
}

// metagraphScenario is a subnet whose neurons differ in every column: a
// validator with stake and a weight row, an axon, a commitment.
func metagraphScenario(t testing.TB) *harness {
	h := scenario(t)
	h.ok(hVal, mWeights(1, []uint32{1, 2}, []uint32{30000, 65535}, 0))
	h.ok(hMin1, mServe(1, addr0PeerID(hMin1), "/ip4/127.0.0.1/tcp/4001"))
	h.ok(hMin2, mCommitment(1, addr(hMin2), []byte("bafy-model")))
	h.s.subnets[1].neurons[1].Bonds = []Entry{{UID: 0, Value: 7}}
	h.s.subnets[1].neurons[2].Incentive, h.s.subnets[1].neurons[2].Emission = 123, 456
	return h
}

// Each choice of columns holds exactly those columns, equal to the full
// metagraph's; the others are nil. The legacy Metagraph is unchanged.
func TestMetagraphColumns(t *testing.T) {
	h := metagraphScenario(t)
	full, _ := h.s.Metagraph(1, false)
	if full.Fields != nil || full.Weights[0][1].Value != 65535 || full.Axons[1] == nil || full.Commitments[2] == nil || full.Stake[0] != 1_000_000 {
		t.Fatalf("scenario: %+v", full)
	}
	fullV, fullT := reflect.ValueOf(*full), reflect.TypeOf(*full)
	for _, list := range []string{"uid,stake,incentive,emission,hotkey", "lite", "all", "weights", "coldkeys,bonds,commitments,axons,active,validator_permit"} {
		f := fieldsOf(t, list)
		m, ok := h.s.MetagraphColumns(1, f)
		if !ok || m.N != 3 || m.Block != h.s.Height() || !reflect.DeepEqual(m.Fields, f.Names()) {
			t.Fatalf("%s: %+v", list, m)
		}
		v := reflect.ValueOf(*m)
		for i := range fullT.NumField() {
			name := strings.Split(fullT.Field(i).Tag.Get("json"), ",")[0]
			bit, isCol := metagraphFieldBit(name)
			if !isCol {
				continue
			}
			got := v.Field(i)
			if f.Has(bit) != !got.IsNil() {
				t.Errorf("%s: column %s present = %v", list, name, !got.IsNil())
			}
			if f.Has(bit) && !reflect.DeepEqual(got.Interface(), fullV.Field(i).Interface()) {
				t.Errorf("%s: column %s = %v, want %v", list, name, got.Interface(), fullV.Field(i).Interface())
			}
		}
	}
	if _, ok := h.s.MetagraphColumns(9, AllMetagraphFields); ok {
		t.Fatal("missing subnet answered")
	}
	lite, _ := h.s.Metagraph(1, true)
	if lite.Fields != nil || lite.Weights != nil || lite.Commitments != nil || lite.Stake == nil {
		t.Fatalf("lite %+v", lite)
	}
}

// Every choice of columns survives the binary encoding; every strict
// prefix and a trailing byte are refused.
func TestMetagraphEncoding(t *testing.T) {
	h := metagraphScenario(t)
	for _, list := range []string{"uid", "lite", "all", "stake,weights", "hotkeys,coldkeys,commitments"} {
		m, _ := h.s.MetagraphColumns(1, fieldsOf(t, list))
		enc, err := EncodeMetagraph(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeMetagraph(enc)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("%s: round trip %v\n got %+v\nwant %+v", list, err, got, m)
		}
		for i := range enc {
			if _, err := DecodeMetagraph(enc[:i]); err == nil {
				t.Fatalf("%s: prefix of %d/%d bytes accepted", list, i, len(enc))
			}
		}
		if _, err := DecodeMetagraph(append(enc, 0)); err == nil {
			t.Fatalf("%s: trailing byte accepted", list)
		}
	}
	empty := &State{subnets: map[uint16]*Subnet{4: {Netuid: 4}}, height: 9}
	m, _ := empty.MetagraphColumns(4, AllMetagraphFields)
	enc, _ := EncodeMetagraph(m)
	if got, err := DecodeMetagraph(enc); err != nil || got.N != 0 || got.Block != 9 || len(got.Fields) != len(metagraphFieldNames) {
		t.Fatalf("empty subnet %+v %v", got, err)
	}
	bad := *m
	bad.N = 1
	if _, err := EncodeMetagraph(&bad); err == nil {
		t.Fatal("encoded columns of the wrong length")
	}
	for _, b := range [][]byte{nil, []byte("cymg\x02"), []byte(metagraphMagic + "\x01\x01\x80\x80\x05\x00"), append([]byte(metagraphMagic+"\x01\x01\x01"), 0x80, 0x80, 0x80, 0x01)} {
		if _, err := DecodeMetagraph(b); err == nil {
			t.Fatalf("%x accepted", b)
		}
	}
}

// The ordered JSON of chosen columns holds only them and decodes into a
// Metagraph equal to the answer.
func TestMetagraphColumnsJSON(t *testing.T) {
	h := metagraphScenario(t)
	m, _ := h.s.MetagraphColumns(1, fieldsOf(t, "incentive,uid,weights"))
	b, err := m.ColumnsJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"netuid":1,"n":3,"block":` // then block, fields and the columns in answer order
	if !strings.HasPrefix(string(b), want) || !strings.Contains(string(b), `"fields":["uids","incentive","weights"],"uids":[0,1,2],"incentive":[0,0,123],"weights":[`) || strings.Contains(string(b), "stake") {
		t.Fatalf("%s", b)
	}
}

// historyDB opens a DB keeping keep blocks of history and drives it with
// a harness; apply runs one block of transactions.
type historyDB struct {
	t    *testing.T
	path string
	gen  Genesis
	db   *DB
	h    *harness
}

func openHistoryDB(t *testing.T, keep uint64) *historyDB {
	hd := &historyDB{t: t, path: filepath.Join(t.TempDir(), "chain.db"), gen: testGenesis(kRoot, kOwner, kOther)}
	hd.open(keep)
	t.Cleanup(func() { hd.db.Close() })
	return hd
}

func (hd *historyDB) open(keep uint64) {
	db, err := OpenDB(hd.path, hd.gen, stakeEpoch, WithHistory(keep))
	if err != nil {
		hd.t.Fatal(err)
	}
	seq := map[Address]uint64{}
	if hd.h != nil {
		seq = hd.h.seq
	}
	hd.db, hd.h = db, &harness{t: hd.t, s: db.State(), seq: seq}
}

func (hd *historyDB) apply(txs ...[]byte) {
	hd.t.Helper()
	s := hd.db.State()
	res, err := hd.db.ApplyBlock(Block{Height: s.Height() + 1, Hash: blockHashFor(s.Height() + 1), Txs: txs})
	if err != nil {
		hd.t.Fatal(err)
	}
	for _, r := range res.Txs {
		if r.Code != 0 {
			hd.t.Fatalf("block %d: %s", s.Height(), r.Error)
		}
	}
}

// changingChain registers a subnet, neurons, stake, weights and a
// commitment over 30 blocks (with subnet epochs between), and returns
// the full metagraph of subnet 1 after each block (nil before it
// exists).
func changingChain(hd *historyDB) map[uint64]*Metagraph {
	want := map[uint64]*Metagraph{}
	record := func() {
		m, _ := hd.db.State().MetagraphColumns(1, AllMetagraphFields)
		want[hd.db.State().Height()] = m
	}
	record()
	steps := []func() [][]byte{
		func() [][]byte { return [][]byte{hd.h.tx(kOwner, mRegisterNetwork("alpha"))} },
		func() [][]byte {
			return [][]byte{hd.h.tx(kOwner, mBurned(1, addr(hVal))), hd.h.tx(kOwner, mBurned(1, addr(hMin1)))}
		},
		func() [][]byte { return [][]byte{hd.h.tx(kOwner, mAddStake(addr(hVal), 1_000_000))} },
		func() [][]byte { return [][]byte{hd.h.tx(kOther, mBurned(1, addr(hMin2)))} },
		func() [][]byte { return [][]byte{hd.h.tx(hMin2, mCommitment(1, addr(hMin2), []byte("cid-1")))} },
		func() [][]byte { return [][]byte{hd.h.tx(kOwner, mAddStake(addr(hMin1), 5))} },
		func() [][]byte { return [][]byte{hd.h.tx(hMin1, mServe(1, addr0PeerID(hMin1), "/ip4/10.0.0.1/tcp/1"))} },
	}
	for i := range 30 {
		var txs [][]byte
		if i < len(steps) {
			txs = steps[i]()
		}
		if i == 20 || i == 27 { // after the first epoch gave hVal its permit
			txs = append(txs, hd.h.tx(hVal, mWeights(1, []uint32{1, 2}, []uint32{uint32(i), 100}, 0)))
		}
		hd.apply(txs...)
		record()
	}
	return want
}

func (hd *historyDB) checkAt(height uint64, want *Metagraph) {
	hd.t.Helper()
	got, ok, err := hd.db.MetagraphAt(1, height, AllMetagraphFields)
	if err != nil {
		hd.t.Fatalf("block %d: %v", height, err)
	}
	if want == nil {
		if ok {
			hd.t.Fatalf("block %d: subnet answered before it existed", height)
		}
		return
	}
	if !ok || !reflect.DeepEqual(got, want) {
		hd.t.Fatalf("block %d:\n got %+v\nwant %+v", height, got, want)
	}
}

// The undo log answers every kept height with the state then, through a
// reopen; reads outside the window name the oldest height kept.
func TestMetagraphAtPastHeights(t *testing.T) {
	hd := openHistoryDB(t, 1000)
	want := changingChain(hd)
	latest := hd.db.State().Height()
	if oldest, l := hd.db.HistoryRange(); oldest != 0 || l != latest {
		t.Fatalf("range %d..%d", oldest, l)
	}
	changed := 0
	for height := range latest + 1 {
		hd.checkAt(height, want[height])
		if height > 1 {
			prev, cur := *want[height-1], *want[height]
			prev.Block, cur.Block = 0, 0
			if !reflect.DeepEqual(prev, cur) {
				changed++
			}
		}
	}
	if changed < 8 || want[0] != nil || want[3].N != 2 || want[4].Commitments[2] != nil || want[latest].Commitments[2] == nil {
		t.Fatalf("the scenario changed the metagraph only %d times", changed)
	}
	// Field choice at a past height.
	m, ok, err := hd.db.MetagraphAt(1, 4, fieldsOf(t, "stake,uid"))
	if err != nil || !ok || !reflect.DeepEqual(m.Stake, want[4].Stake) || m.Hotkeys != nil || !reflect.DeepEqual(m.Fields, []string{"uids", "stake"}) {
		t.Fatalf("chosen columns at 4: %+v %v", m, err)
	}
	var he *HeightError
	if _, _, err := hd.db.MetagraphAt(1, latest+1, AllMetagraphFields); !errors.As(err, &he) || !errors.Is(err, ErrHeightNotKept) || he.Latest != latest || !strings.Contains(err.Error(), "ahead of the latest block") {
		t.Fatalf("future block: %v", err)
	}
	hd.db.Close()
	hd.open(1000)
	for height := range latest + 1 {
		hd.checkAt(height, want[height])
	}
}

// With a window of 5 blocks the oldest height kept is latest-5: one block
// before it is refused naming it, it and the block after are answered.
// History is not state: the app hash is the same without it.
func TestMetagraphHistoryPruning(t *testing.T) {
	const keep = 5
	hd := openHistoryDB(t, keep)
	want := changingChain(hd)
	latest := hd.db.State().Height()
	oldest, _ := hd.db.HistoryRange()
	if oldest != latest-keep {
		t.Fatalf("oldest %d, latest %d", oldest, latest)
	}
	var he *HeightError
	_, _, err := hd.db.MetagraphAt(1, oldest-1, LiteMetagraphFields)
	if !errors.As(err, &he) || he.Oldest != oldest || he.Height != oldest-1 || !strings.Contains(err.Error(), "the oldest block kept is") {
		t.Fatalf("below the window: %v", err)
	}
	hd.checkAt(oldest, want[oldest])
	hd.checkAt(oldest+1, want[oldest+1])
	// Entries of pruned blocks are gone from disk.
	hd.db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketHistoryHeights).Cursor()
		if k, _ := c.First(); k == nil || beUint64(k) != oldest+1 {
			t.Fatalf("first history entry %x, want block %d", k, oldest+1)
		}
		return nil
	})
	// A reopen keeps the window; a later block moves it by one.
	hd.db.Close()
	hd.open(keep)
	if o, _ := hd.db.HistoryRange(); o != oldest {
		t.Fatalf("oldest after reopen %d", o)
	}
	hd.apply()
	if o, _ := hd.db.HistoryRange(); o != oldest+1 {
		t.Fatalf("oldest after a block %d", o)
	}
	if _, _, err := hd.db.MetagraphAt(1, oldest, LiteMetagraphFields); !errors.Is(err, ErrHeightNotKept) {
		t.Fatalf("pruned block answered: %v", err)
	}
	appHash := hd.db.State().AppHash()

	none := openHistoryDB(t, 0)
	changingChain(none)
	none.apply()
	if !bytes.Equal(none.db.State().AppHash(), appHash) {
		t.Fatal("history changed the app hash")
	}
	latest = none.db.State().Height()
	if _, _, err := none.db.MetagraphAt(1, latest-1, LiteMetagraphFields); !errors.As(err, &he) || he.Oldest != latest {
		t.Fatalf("no history: %v", err)
	}
	none.db.bolt.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketHistory).Cursor().First(); k != nil {
			t.Fatal("history written with a window of 0")
		}
		return nil
	})
	now, _ := none.db.State().MetagraphColumns(1, AllMetagraphFields)
	none.checkAt(latest, now)
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, x := range b[:8] {
		v = v<<8 | uint64(x)
	}
	return v
}

// A database written before history existed answers only from the height
// it was reopened at on.
func TestMetagraphHistoryOfOlderDatabase(t *testing.T) {
	hd := openHistoryDB(t, 100)
	want := changingChain(hd)
	hd.db.Close()
	db, err := bolt.Open(hd.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		tx.DeleteBucket(bucketHistory)
		tx.DeleteBucket(bucketHistoryHeights)
		return tx.Bucket(bucketMeta).Delete(metaHistoryFrom)
	})
	db.Close()
	hd.open(100)
	latest := hd.db.State().Height()
	if o, _ := hd.db.HistoryRange(); o != latest {
		t.Fatalf("oldest %d, want %d", o, latest)
	}
	hd.apply(hd.h.tx(kOwner, mAddStake(addr(hMin1), 1)))
	hd.checkAt(latest, want[latest])
}

func FuzzDecodeMetagraph(f *testing.F) {
	h := metagraphScenario(f)
	for _, fields := range []MetagraphFields{AllMetagraphFields, LiteMetagraphFields, 1 << 3} {
		m, _ := h.s.MetagraphColumns(1, fields)
		enc, _ := EncodeMetagraph(m)
		f.Add(enc)
	}
	f.Add([]byte(metagraphMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMetagraph(b)
		if err != nil {
			return
		}
		enc, err := EncodeMetagraph(m)
		if err != nil {
			t.Fatalf("decoded a metagraph that does not encode: %v", err)
		}
		again, err := DecodeMetagraph(enc)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("re-encoding changed the metagraph: %v", err)
		}
	})
}

// Weight and bond rows are delta-coded in a metagraph answer: a dense row
// takes 3 bytes per entry; rows round-trip exactly, whatever their gaps; a
// row whose uids do not increase is refused rather than encoded wrongly;
// a decoder given a row longer than its bytes or uids past 16 bits refuses.
func TestMetagraphRowEncoding(t *testing.T) {
	for _, row := range [][]Entry{
		nil,
		{{UID: 0, Value: 0}},
		{{UID: 65535, Value: 65535}},
		{{UID: 0, Value: 1}, {UID: 1, Value: 2}, {UID: 2, Value: 65535}},
		{{UID: 3, Value: 7}, {UID: 200, Value: 300}, {UID: 40000, Value: 0}, {UID: 65535, Value: 1}},
	} {
		var e encoder
		if !encodeRow(&e, row) {
			t.Fatalf("%v refused", row)
		}
		d := decoder{b: e.b}
		if got := decodeRow(&d); d.finish() != nil || !reflect.DeepEqual(got, row) {
			t.Fatalf("%v → %v %v", row, got, d.err)
		}
	}
	dense := make([]Entry, 4096)
	for j := range dense {
		dense[j] = Entry{UID: uint16(j), Value: uint16(j * 17)}
	}
	var e encoder
	encodeRow(&e, dense)
	if len(e.b) != 2+3*4096 {
		t.Fatalf("a dense 4,096-entry row takes %d bytes", len(e.b))
	}
	for _, bad := range [][]Entry{{{UID: 5}, {UID: 5}}, {{UID: 5}, {UID: 4}}} {
		var e encoder
		if encodeRow(&e, bad) {
			t.Fatalf("%v encoded", bad)
		}
	}
	for name, b := range map[string][]byte{
		"longer than its bytes": {5, 0, 1, 0},
		"uid past 16 bits":      {2, 0xff, 0xff, 0x03, 1, 0, 0, 1, 0},
		"value cut short":       {1, 0, 1},
	} {
		d := decoder{b: b}
		if got := decodeRow(&d); d.err == nil {
			t.Fatalf("%s: decoded %v", name, got)
		}
	}
}
