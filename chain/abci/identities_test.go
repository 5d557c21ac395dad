package abci

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chain/chaintest"
	"github.com/cybertensor/cybertensor/wallet"
)

// The identity query paths: found, not found, and malformed.
func TestIdentityQueries(t *testing.T) {
	keys := make([]*wallet.PrivateKey, 3)
	for i := range keys {
		seed := sha256.Sum256([]byte(fmt.Sprintf("abci identity test %d", i)))
		keys[i], _ = wallet.PrivateKeyFromBytes(seed[:])
	}
	owner, hotkey := keys[0], keys[1].PublicKey().Address()
	gen := chain.LocalnetGenesis("abci-identity", owner.PublicKey().Address(), []chain.GenesisBalance{{Address: owner.PublicKey().Address(), Amount: 1e12}})
	gen.Subnets = []chain.GenesisSubnet{{Name: "alpha", Owner: owner.PublicKey().Address()}}
	s, err := chain.NewState(gen, chaintest.StakeEpoch)
	if err != nil {
		t.Fatal(err)
	}
	var txs [][]byte
	for seq, msg := range []*chainpb.Msg{
		{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: hotkey[:]}}},
		{Sum: &chainpb.Msg_SetIdentity{SetIdentity: &chainpb.SetIdentity{Name: "owner"}}},
		{Sum: &chainpb.Msg_SetSubnetIdentity{SetSubnetIdentity: &chainpb.SetSubnetIdentity{Netuid: 1, Name: "alpha"}}},
	} {
		raw, err := chain.SignTx(owner, gen.ChainID, uint64(seq), msg)
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, raw)
	}
	res, err := s.ApplyBlock(chain.Block{Height: 1, Hash: []byte{1}, Txs: txs})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Txs {
		if r.Code != 0 {
			t.Fatalf("tx refused: %s", r.Error)
		}
	}
	for _, tc := range []struct {
		path string
		code uint32
		name string
	}{
		{"/identity/" + owner.PublicKey().Address().String(), CodeOK, "owner"},
		{"/identity/" + keys[2].PublicKey().Address().String(), CodeNotFound, ""},
		{"/identity/nope", CodeBadQuery, ""},
		{"/identity", CodeBadQuery, ""},
		{"/subnetidentity/1", CodeOK, "alpha"},
		{"/subnetidentity/0", CodeNotFound, ""},
		{"/subnetidentity/9", CodeNotFound, ""},
		{"/subnetidentity/70000", CodeBadQuery, ""},
		{"/subnetidentity/x", CodeBadQuery, ""},
	} {
		v, code, err := query(s, tc.path)
		if code != tc.code || (code == CodeOK) != (err == nil) {
			t.Errorf("%s: code %d, %v; want %d", tc.path, code, err, tc.code)
			continue
		}
		if tc.name != "" {
			if id, ok := v.(chain.Identity); !ok || id.Name != tc.name {
				t.Errorf("%s: %#v", tc.path, v)
			}
		}
	}
}
