package subnet

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

func testRand(seed byte) *rand.Rand { return rand.New(rand.NewChaCha8([32]byte{seed})) }

func testCID(t testing.TB, data []byte) cid.Cid {
	t.Helper()
	mh, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, mh)
}

func TestTextTask(t *testing.T) {
	task := TextTask(`Why is the "sky" blue?`, "Rayleigh")
	if task.Synapse != "text.generate" || string(task.Body) != `{"prompt":"Why is the \"sky\" blue?"}` || task.Expected != "Rayleigh" {
		t.Fatalf("%+v", task)
	}
	r := task.Response("ok", []byte("Rayleigh scattering"), 500*time.Millisecond, 2*time.Second)
	want := Response{Answer: "Rayleigh scattering", Expected: "Rayleigh", Status: "ok", LatencyMS: 500, TimeoutMS: 2000, Valid: true}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("%+v", r)
	}
	if r := task.Response("timeout", nil, 2*time.Second, 2*time.Second); r.Valid {
		t.Fatal("a timeout is valid")
	}
}

func TestStorageTask(t *testing.T) {
	body := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog. "), 100)
	c := testCID(t, body)
	ch, err := NewStorageChallenge(testRand(1), c, uint64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	data := body[ch.Offset : ch.Offset+ch.Length]
	task := StorageTask(ch, data)
	if got, err := DecodeStorageChallenge(task.Body); err != nil || !reflect.DeepEqual(got, ch) {
		t.Fatalf("the body decodes to %+v %v, want %+v", got, err, ch)
	}
	other := ch
	other.Nonce = bytes.Repeat([]byte{7}, 32)
	shifted := body[ch.Offset+1 : ch.Offset+1+ch.Length]
	storage, _ := Builtin("storage")
	reward, _ := NewReward(storage.Reward)
	for _, c := range []struct {
		name   string
		status string
		answer []byte
		valid  bool
	}{
		{"the proof", "ok", ch.Prove(data).Encode(), true},
		{"the proof, upper-case hex", "ok", []byte(`{"proof":"` + strings.ToUpper(ch.Prove(data).Proof.String()) + `"}`), true},
		{"the proof, late", "timeout", ch.Prove(data).Encode(), false},
		{"another nonce's proof", "ok", other.Prove(data).Encode(), false},
		{"the wrong bytes", "ok", ch.Prove(shifted).Encode(), false},
		{"no bytes", "ok", ch.Prove(nil).Encode(), false},
		{"the bytes themselves", "ok", data, false},
		{"a short proof", "ok", []byte(`{"proof":"abcd"}`), false},
		{"not JSON", "ok", []byte("proof"), false},
		{"empty", "ok", nil, false},
	} {
		r := task.Response(c.status, c.answer, 100*time.Millisecond, time.Second)
		if r.Valid != c.valid {
			t.Errorf("%s: valid %v, want %v (%v)", c.name, r.Valid, c.valid, task.Check(c.answer))
		}
		score, err := reward.Score(r)
		if err != nil || (score > 0) != c.valid {
			t.Errorf("%s: score %v %v", c.name, score, err)
		}
	}
	if err := task.Check(other.Prove(data).Encode()); !errors.Is(err, ErrWrongAnswer) {
		t.Errorf("a wrong proof: %v", err)
	}
	if task.Work != float64(ch.Length) || task.Expected != ch.Prove(data).Proof.String() {
		t.Errorf("work %v, expected %q", task.Work, task.Expected)
	}
}

// Challenges cover 64 to 1,024 bytes inside the body (all of a shorter
// one), and the same random source makes the same challenge.
func TestNewStorageChallenge(t *testing.T) {
	c := testCID(t, []byte("x"))
	rng := testRand(2)
	for _, size := range []uint64{1, 2, 63, 64, 65, 1000, 1024, 1025, 5000, MaxStorageObject} {
		for range 50 {
			ch, err := NewStorageChallenge(rng, c, size)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Length < min(size, 64) || ch.Length > min(size, 1024) || ch.Offset+ch.Length > size || len(ch.Nonce) != 32 || ch.CID != c.String() {
				t.Fatalf("size %d: %+v", size, ch)
			}
			if _, err := DecodeStorageChallenge(ch.Encode()); err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
		}
	}
	a, _ := NewStorageChallenge(testRand(3), c, 5000)
	b, _ := NewStorageChallenge(testRand(3), c, 5000)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("not reproducible")
	}
	for _, size := range []uint64{0, MaxStorageObject + 1} {
		if _, err := NewStorageChallenge(rng, c, size); err == nil {
			t.Errorf("size %d accepted", size)
		}
	}
}

func TestDecodeStorageChallenge(t *testing.T) {
	c := testCID(t, []byte("x")).String()
	nonce := strings.Repeat("ab", 32)
	ok := `{"cid":"` + c + `","offset":10,"length":100,"nonce":"` + nonce + `"}`
	if _, err := DecodeStorageChallenge([]byte(ok)); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"not JSON":       "cid",
		"trailing data":  ok + "{}",
		"unknown field":  strings.Replace(ok, `"offset"`, `"ofset"`, 1),
		"no cid":         strings.Replace(ok, c, "", 1),
		"bad cid":        strings.Replace(ok, c, "bafynope", 1),
		"long cid":       strings.Replace(ok, c, strings.Repeat("b", 200), 1),
		"zero length":    strings.Replace(ok, `"length":100`, `"length":0`, 1),
		"long length":    strings.Replace(ok, `"length":100`, `"length":4097`, 1),
		"negative":       strings.Replace(ok, `"offset":10`, `"offset":-1`, 1),
		"fractional":     strings.Replace(ok, `"offset":10`, `"offset":1.5`, 1),
		"huge offset":    strings.Replace(ok, `"offset":10`, `"offset":281474976710656`, 1),
		"short nonce":    strings.Replace(ok, nonce, "abab", 1),
		"odd hex nonce":  strings.Replace(ok, nonce, nonce[1:], 1),
		"non-hex nonce":  strings.Replace(ok, nonce, strings.Repeat("zz", 32), 1),
		"null":           "null",
		"over 1 KiB":     ok + strings.Repeat(" ", 1024),
		"nonce a number": strings.Replace(ok, `"`+nonce+`"`, "12", 1),
	} {
		if _, err := DecodeStorageChallenge([]byte(body)); !errors.Is(err, ErrBadBody) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A hash-preimage job's solution checks with one hash; a random nonce, a
// solution to another seed or a malformed answer does not.
func TestHashPreimage(t *testing.T) {
	g, err := NewGenerator(GenHashPreimage, 12)
	if err != nil {
		t.Fatal(err)
	}
	rng := testRand(4)
	task := g.Next(rng)
	job, err := DecodeComputeJob(task.Body)
	if err != nil || job.Kind != GenHashPreimage || job.Difficulty != 12 || task.Work != 4096 || task.Synapse != "compute.run" {
		t.Fatalf("%+v %v", job, err)
	}
	res, err := job.Solve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Check(res.Encode()); err != nil {
		t.Fatalf("the solution: %v", err)
	}
	otherJob, _ := DecodeComputeJob(g.Next(rng).Body)
	otherRes, _ := otherJob.Solve(context.Background())
	var zeros int
	for i := range 64 {
		nonce := randomBytes(testRand(byte(i)), nonceSize)
		if task.Check(ComputeResult{Nonce: nonce}.Encode()) == nil {
			zeros++
		}
	}
	if zeros > 1 { // 2^-12 each
		t.Fatalf("%d of 64 random nonces pass", zeros)
	}
	for name, answer := range map[string][]byte{
		"another job's solution": otherRes.Encode(),
		"a result":               []byte(`{"result":"01"}`),
		"a short nonce":          []byte(`{"nonce":"0001"}`),
		"both":                   []byte(`{"nonce":"0000000000000001","result":"01"}`),
		"neither":                []byte(`{}`),
		"garbage":                []byte{0xff, 0},
	} {
		if err := task.Check(answer); err == nil {
			t.Errorf("%s passes", name)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	hard := ComputeJob{Kind: GenHashPreimage, Seed: make(Hex, 32), Difficulty: 32}
	if _, err := hard.Solve(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled solve: %v", err)
	}
}

// An arithmetic job done the slow way (sequential squarings) matches what
// the validator computed with its trapdoor.
func TestArithmetic(t *testing.T) {
	g, err := NewGenerator(GenArithmetic, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if g.n.BitLen() < timeLockBits-1 {
		t.Fatalf("a %d-bit modulus", g.n.BitLen())
	}
	rng := testRand(5)
	for range 5 {
		task := g.Next(rng)
		job, err := DecodeComputeJob(task.Body)
		if err != nil || job.Squarings != 1000 || task.Work != 1000 {
			t.Fatalf("%+v %v", job, err)
		}
		res, err := job.Solve(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Result.String() != task.Expected {
			t.Fatalf("squarings give %s, the trapdoor %s", res.Result, task.Expected)
		}
		if err := task.Check(res.Encode()); err != nil {
			t.Fatal(err)
		}
		// The naive reference: x^(2^T) mod n by big.Int.Exp.
		n, x := new(big.Int).SetBytes(job.Modulus), new(big.Int).SetBytes(job.Base)
		ref := new(big.Int).Exp(x, new(big.Int).Lsh(big.NewInt(1), uint(job.Squarings)), n)
		if new(big.Int).SetBytes(res.Result).Cmp(ref) != 0 {
			t.Fatal("Solve differs from the reference")
		}
		wrong := new(big.Int).Add(ref, big.NewInt(1))
		if err := task.Check(ComputeResult{Result: wrong.Bytes()}.Encode()); !errors.Is(err, ErrWrongAnswer) {
			t.Fatalf("a wrong result: %v", err)
		}
		if err := task.Check(ComputeResult{Nonce: make(Hex, 8)}.Encode()); err == nil {
			t.Fatal("a nonce passes an arithmetic job")
		}
	}
	for _, c := range []struct {
		name string
		d    uint64
	}{{GenHashPreimage, 33}, {GenArithmetic, MaxSquarings + 1}, {"magic", 1}} {
		if _, err := NewGenerator(c.name, c.d); err == nil {
			t.Errorf("%s at %d accepted", c.name, c.d)
		}
	}
}

func TestDecodeComputeJob(t *testing.T) {
	seed := strings.Repeat("01", 32)
	pre := `{"kind":"hash-preimage","seed":"` + seed + `","difficulty":8}`
	ari := `{"kind":"arithmetic","modulus":"0b","base":"03","squarings":5}`
	for _, ok := range []string{pre, ari} {
		if _, err := DecodeComputeJob([]byte(ok)); err != nil {
			t.Fatalf("%s: %v", ok, err)
		}
	}
	for name, body := range map[string]string{
		"unknown kind":        `{"kind":"sudoku"}`,
		"no kind":             `{}`,
		"preimage short seed": strings.Replace(pre, seed, "01", 1),
		"preimage 0 bits":     strings.Replace(pre, `"difficulty":8`, `"difficulty":0`, 1),
		"preimage 33 bits":    strings.Replace(pre, `"difficulty":8`, `"difficulty":33`, 1),
		"preimage modulus":    strings.Replace(pre, `"difficulty":8`, `"difficulty":8,"modulus":"0b"`, 1),
		"no modulus":          strings.Replace(ari, `"modulus":"0b",`, ``, 1),
		"modulus 2":           strings.Replace(ari, `"modulus":"0b"`, `"modulus":"02"`, 1),
		"modulus too big":     strings.Replace(ari, `"modulus":"0b"`, `"modulus":"`+strings.Repeat("ff", 513)+`"`, 1),
		"base 1":              strings.Replace(ari, `"base":"03"`, `"base":"01"`, 1),
		"base = modulus":      strings.Replace(ari, `"base":"03"`, `"base":"0b"`, 1),
		"no squarings":        strings.Replace(ari, `,"squarings":5`, ``, 1),
		"too many squarings":  strings.Replace(ari, `"squarings":5`, `"squarings":16777217`, 1),
		"arithmetic seed":     strings.Replace(ari, `"squarings":5`, `"squarings":5,"seed":"`+seed+`"`, 1),
		"over 4 KiB":          ari + strings.Repeat(" ", 4096),
	} {
		if _, err := DecodeComputeJob([]byte(body)); !errors.Is(err, ErrBadBody) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzDecodeStorageChallenge(f *testing.F) {
	ch, _ := NewStorageChallenge(testRand(6), testCID(f, []byte("x")), 3000)
	f.Add(ch.Encode())
	f.Add([]byte(`{"cid":"bafkqaaa","offset":1,"length":1,"nonce":""}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeStorageChallenge(b)
		if err != nil {
			if !errors.Is(err, ErrBadBody) {
				t.Fatalf("error not wrapping ErrBadBody: %v", err)
			}
			return
		}
		again, err := DecodeStorageChallenge(c.Encode())
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("re-encoding %+v gives %+v %v", c, again, err)
		}
		if c.Length == 0 || c.Length > MaxChallengeLength || len(c.Nonce) != 32 {
			t.Fatalf("accepted %+v", c)
		}
	})
}

func FuzzDecodeStorageProof(f *testing.F) {
	ch, _ := NewStorageChallenge(testRand(7), testCID(f, []byte("x")), 3000)
	data := bytes.Repeat([]byte{1}, int(ch.Length))
	task := StorageTask(ch, data)
	f.Add(ch.Prove(data).Encode())
	f.Add([]byte(`{"proof":"00"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeStorageProof(b)
		if err != nil {
			if !errors.Is(err, ErrBadBody) {
				t.Fatalf("error not wrapping ErrBadBody: %v", err)
			}
		} else if again, err := DecodeStorageProof(p.Encode()); err != nil || !bytes.Equal(again.Proof, p.Proof) {
			t.Fatalf("re-encoding %x: %v", []byte(p.Proof), err)
		}
		// Only the proof passes the check.
		if task.Check(b) == nil && !bytes.Equal(p.Proof, ch.Prove(data).Proof) {
			t.Fatalf("%q passes", b)
		}
	})
}

func FuzzDecodeComputeJob(f *testing.F) {
	pre, _ := NewGenerator(GenHashPreimage, 8)
	f.Add(pre.Next(testRand(8)).Body)
	f.Add([]byte(`{"kind":"arithmetic","modulus":"0b","base":"03","squarings":5}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := DecodeComputeJob(b)
		if err != nil {
			if !errors.Is(err, ErrBadBody) {
				t.Fatalf("error not wrapping ErrBadBody: %v", err)
			}
			return
		}
		again, err := DecodeComputeJob(j.Encode())
		if err != nil || again.Encode() == nil || !bytes.Equal(again.Encode(), j.Encode()) {
			t.Fatalf("re-encoding %+v gives %+v %v", j, again, err)
		}
		if j.Kind == GenArithmetic && j.Squarings <= 64 {
			if _, err := j.Solve(context.Background()); err != nil {
				t.Fatalf("solving %+v: %v", j, err)
			}
		}
	})
}

func FuzzDecodeComputeResult(f *testing.F) {
	g, _ := NewGenerator(GenHashPreimage, 4)
	task := g.Next(testRand(9))
	job, _ := DecodeComputeJob(task.Body)
	res, _ := job.Solve(context.Background())
	f.Add(res.Encode())
	f.Add([]byte(`{"result":"0102"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeComputeResult(b)
		if err != nil {
			if !errors.Is(err, ErrBadBody) {
				t.Fatalf("error not wrapping ErrBadBody: %v", err)
			}
			if task.Check(b) == nil {
				t.Fatalf("undecodable %q passes", b)
			}
			return
		}
		again, err := DecodeComputeResult(r.Encode())
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("re-encoding %+v gives %+v %v", r, again, err)
		}
		// Passing means the hash really has the zero bits.
		if task.Check(b) == nil && job.Verify(r, nil) != nil {
			t.Fatalf("%q passes", b)
		}
	})
}
