package abci

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	abcitypes "github.com/cometbft/cometbft/abci/types"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/wallet"
)

// Query response codes.
const (
	CodeOK       = 0
	CodeNotFound = 1
	CodeBadQuery = 2
)

// App is the chain application as an ABCI++ application.
type App struct {
	abcitypes.BaseApplication

	mu sync.Mutex
	db *chain.DB
	// checkSeq holds, per signer, the next sequence counting the
	// transactions CheckTx accepted since the last commit.
	checkSeq map[wallet.Address]uint64
}

var _ abcitypes.Application = (*App)(nil)

// NewApp serves db.
func NewApp(db *chain.DB) *App {
	return &App{db: db, checkSeq: map[wallet.Address]uint64{}}
}

// Info reports the last committed height and app hash, from which
// CometBFT decides what to replay.
func (a *App) Info(_ context.Context, _ *abcitypes.RequestInfo) (*abcitypes.ResponseInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.db.State()
	return &abcitypes.ResponseInfo{
		Data:             "cybertensor",
		Version:          "1",
		AppVersion:       1,
		LastBlockHeight:  int64(s.Height()),
		LastBlockAppHash: s.AppHash(),
	}, nil
}

// InitChain checks that CometBFT's genesis is the one the database was
// created from and returns the genesis app hash.
func (a *App) InitChain(_ context.Context, req *abcitypes.RequestInitChain) (*abcitypes.ResponseInitChain, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.db.State()
	if req.ChainId != s.ChainID() {
		return nil, fmt.Errorf("abci: CometBFT chain %q, application chain %q", req.ChainId, s.ChainID())
	}
	if len(req.AppStateBytes) > 0 {
		var gen chain.Genesis
		if err := json.Unmarshal(req.AppStateBytes, &gen); err != nil {
			return nil, fmt.Errorf("abci: genesis app_state: %w", err)
		}
		mine, _ := json.Marshal(a.db.Genesis())
		theirs, _ := json.Marshal(gen)
		if string(mine) != string(theirs) {
			return nil, fmt.Errorf("abci: genesis app_state differs from the application's genesis")
		}
	}
	return &abcitypes.ResponseInitChain{AppHash: s.AppHash()}, nil
}

// CheckTx admits a transaction to the mempool if it would pass now.
func (a *App) CheckTx(_ context.Context, req *abcitypes.RequestCheckTx) (*abcitypes.ResponseCheckTx, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.db.State()
	tx, err := s.CheckTxSequence(req.Tx, func(addr wallet.Address) uint64 {
		if n, ok := a.checkSeq[addr]; ok {
			return n
		}
		return s.Account(addr).Sequence
	})
	if err != nil {
		return &abcitypes.ResponseCheckTx{Code: chain.CodeOf(err), Log: err.Error(), Codespace: "cybertensor"}, nil
	}
	a.checkSeq[tx.Signer] = tx.Body.Sequence + 1
	return &abcitypes.ResponseCheckTx{Code: 0}, nil
}

// FinalizeBlock applies a decided block.
func (a *App) FinalizeBlock(_ context.Context, req *abcitypes.RequestFinalizeBlock) (*abcitypes.ResponseFinalizeBlock, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	res, err := a.db.Finalize(chain.Block{Height: uint64(req.Height), Hash: req.Hash, Txs: req.Txs})
	if err != nil {
		return nil, fmt.Errorf("abci: finalize block %d: %w", req.Height, err)
	}
	out := &abcitypes.ResponseFinalizeBlock{AppHash: res.AppHash, Events: toABCIEvents(res.Events)}
	for _, r := range res.Txs {
		events := toABCIEvents(r.Events)
		events = append(events, abcitypes.Event{Type: "signer", Attributes: []abcitypes.EventAttribute{{Key: "address", Value: r.Signer.String(), Index: true}}})
		out.TxResults = append(out.TxResults, &abcitypes.ExecTxResult{Code: r.Code, Log: r.Error, Events: events, Codespace: codespace(r.Code)})
	}
	return out, nil
}

func codespace(code uint32) string {
	if code == 0 {
		return ""
	}
	return "cybertensor"
}

func toABCIEvents(events []chain.Event) []abcitypes.Event {
	out := make([]abcitypes.Event, 0, len(events))
	for _, e := range events {
		keys := make([]string, 0, len(e.Attrs))
		for k := range e.Attrs {
			keys = append(keys, k)
		}
		sortStrings(keys)
		ev := abcitypes.Event{Type: e.Type}
		for _, k := range keys {
			ev.Attributes = append(ev.Attributes, abcitypes.EventAttribute{Key: k, Value: e.Attrs[k], Index: true})
		}
		out = append(out, ev)
	}
	return out
}

// Commit persists the finalized block.
func (a *App) Commit(_ context.Context, _ *abcitypes.RequestCommit) (*abcitypes.ResponseCommit, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.db.Commit(); err != nil {
		return nil, fmt.Errorf("abci: commit: %w", err)
	}
	clear(a.checkSeq)
	return &abcitypes.ResponseCommit{}, nil
}

// Query answers the paths listed in the package documentation.
func (a *App) Query(_ context.Context, req *abcitypes.RequestQuery) (*abcitypes.ResponseQuery, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if resp, ok := a.metagraphQuery(req); ok {
		return resp, nil
	}
	s := a.db.State()
	v, code, err := query(s, req.Path)
	resp := &abcitypes.ResponseQuery{Code: code, Height: int64(s.Height())}
	if err != nil {
		resp.Log = err.Error()
		return resp, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		resp.Code, resp.Log = CodeBadQuery, err.Error()
		return resp, nil
	}
	resp.Value = b
	return resp, nil
}

func query(s *chain.State, path string) (any, uint32, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	arg := func(i int) string {
		if i < len(parts) {
			return parts[i]
		}
		return ""
	}
	address := func(i int) (wallet.Address, error) {
		a, _, err := wallet.ParseAddress(arg(i))
		return a, err
	}
	netuid := func(i int) (uint16, error) {
		n, err := strconv.ParseUint(arg(i), 10, 16)
		return uint16(n), err
	}
	notFound := func(what string) (any, uint32, error) { return nil, CodeNotFound, fmt.Errorf("%s not found", what) }
	bad := func(err error) (any, uint32, error) { return nil, CodeBadQuery, fmt.Errorf("query %q: %w", path, err) }
	switch parts[0] {
	case "account":
		a, err := address(1)
		if err != nil {
			return bad(err)
		}
		return s.Account(a), CodeOK, nil
	case "hotkey":
		a, err := address(1)
		if err != nil {
			return bad(err)
		}
		if info, ok := s.Hotkey(a); ok {
			return info, CodeOK, nil
		}
		return notFound("hotkey " + arg(1))
	case "stake":
		c, err1 := address(1)
		h, err2 := address(2)
		if err1 != nil || err2 != nil {
			return bad(fmt.Errorf("want /stake/<coldkey>/<hotkey>"))
		}
		return map[string]uint64{"amount": s.Stake(c, h)}, CodeOK, nil
	case "subnets":
		return s.Subnets(), CodeOK, nil
	case "subnet":
		n, err := netuid(1)
		if err != nil {
			return bad(err)
		}
		if info, ok := s.Subnet(n); ok {
			return info, CodeOK, nil
		}
		return notFound("subnet " + arg(1))
	case "neuron":
		n, err1 := netuid(1)
		h, err2 := address(2)
		if err1 != nil || err2 != nil {
			return bad(fmt.Errorf("want /neuron/<netuid>/<hotkey>"))
		}
		if info, ok := s.NeuronByHotkey(n, h); ok {
			return info, CodeOK, nil
		}
		return notFound("neuron " + arg(2) + " on subnet " + arg(1))
	case "commitment":
		n, err1 := netuid(1)
		h, err2 := address(2)
		if err1 != nil || err2 != nil {
			return bad(fmt.Errorf("want /commitment/<netuid>/<hotkey>"))
		}
		if c, ok := s.Commitment(n, h); ok {
			return c, CodeOK, nil
		}
		return notFound("commitment of " + arg(2) + " on subnet " + arg(1))
	case "commitments":
		n, err := netuid(1)
		if err != nil {
			return bad(err)
		}
		if list, ok := s.Commitments(n); ok {
			return list, CodeOK, nil
		}
		return notFound("subnet " + arg(1))
	case "identity":
		a, err := address(1)
		if err != nil {
			return bad(err)
		}
		if id, ok := s.Identity(a); ok {
			return id, CodeOK, nil
		}
		return notFound("identity of " + arg(1))
	case "subnetidentity":
		n, err := netuid(1)
		if err != nil {
			return bad(err)
		}
		if _, ok := s.Subnet(n); !ok {
			return notFound("subnet " + arg(1))
		}
		if id, ok := s.SubnetIdentity(n); ok {
			return id, CodeOK, nil
		}
		return notFound("identity of subnet " + arg(1))
	case "overview", "stakes":
		c, err := address(1)
		if err != nil {
			return bad(fmt.Errorf("want /%s/<coldkey>: %w", parts[0], err))
		}
		if parts[0] == "overview" {
			return s.Overview(c), CodeOK, nil
		}
		return s.StakesOf(c), CodeOK, nil
	case "children":
		n, err1 := netuid(1)
		h, err2 := address(2)
		if err1 != nil || err2 != nil {
			return bad(fmt.Errorf("want /children/<netuid>/<hotkey>"))
		}
		if info, ok := s.ChildKeys(n, h); ok {
			return info, CodeOK, nil
		}
		return notFound("subnet " + arg(1))
	case "weights", "bonds":
		n, err := netuid(1)
		if err != nil {
			return bad(err)
		}
		if len(parts) > 2 {
			// /weights/<netuid>/<mechanism>
			mech, err := strconv.ParseUint(arg(2), 10, 8)
			if err != nil {
				return bad(fmt.Errorf("mechanism: %w", err))
			}
			if rows, ok := s.MechanismWeights(n, uint8(mech), parts[0] == "bonds"); ok {
				return rows, CodeOK, nil
			}
			return notFound("mechanism " + arg(2) + " of subnet " + arg(1))
		}
		rows, ok := s.Weights(n)
		if parts[0] == "bonds" {
			rows, ok = s.Bonds(n)
		}
		if ok {
			return rows, CodeOK, nil
		}
		return notFound("subnet " + arg(1))
	case "mechanisms":
		n, err := netuid(1)
		if err != nil {
			return bad(err)
		}
		if info, ok := s.Mechanisms(n); ok {
			return info, CodeOK, nil
		}
		return notFound("subnet " + arg(1))
	case "delegates":
		return s.Delegates(), CodeOK, nil
	case "delegate":
		h, err := address(1)
		if err != nil {
			return bad(err)
		}
		if d, ok := s.Delegate(h); ok {
			return d, CodeOK, nil
		}
		return notFound("delegate " + arg(1))
	case "delegations":
		c, err := address(1)
		if err != nil {
			return bad(err)
		}
		return s.Delegations(c), CodeOK, nil
	case "globals":
		return s.Globals(), CodeOK, nil
	case "supply":
		return s.Supply(), CodeOK, nil
	case "lockcost":
		return s.LockCostInfo(), CodeOK, nil
	case "burncost":
		n, err := netuid(1)
		if err != nil {
			return bad(err)
		}
		if bc, ok := s.BurnCost(n); ok {
			return bc, CodeOK, nil
		}
		return notFound("subnet " + arg(1))
	case "blockhash":
		h, err := strconv.ParseUint(arg(1), 10, 64)
		if err != nil {
			return bad(err)
		}
		if hash, ok := s.BlockHash(h); ok {
			return map[string][]byte{"hash": hash}, CodeOK, nil
		}
		return notFound("recent block " + arg(1))
	default:
		return bad(fmt.Errorf("unknown path"))
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
