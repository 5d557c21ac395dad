package abci

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	dbm "github.com/cometbft/cometbft-db"

	cmtcfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/spf13/viper"

	"github.com/cybertensor/cybertensor/chain"
)

// dbFile is the chain application's database inside a node home.
const dbFile = "data/cybertensor.db"

// Node is a CometBFT node running the chain application in-process.
type Node struct {
	cmt  *cmtnode.Node
	db   *chain.DB
	home string
	// cmtDBs are the databases CometBFT opened; it does not close its tx
	// index on stop, so Stop closes whatever is left.
	cmtDBs *dbTracker
}

// dbTracker records the databases a node opens.
type dbTracker struct {
	mu  sync.Mutex
	dbs []dbm.DB
}

func (t *dbTracker) provide(ctx *cmtcfg.DBContext) (dbm.DB, error) {
	db, err := cmtcfg.DefaultDBProvider(ctx)
	if err == nil {
		t.mu.Lock()
		t.dbs = append(t.dbs, db)
		t.mu.Unlock()
	}
	return db, err
}

// closeAll closes every database; ones CometBFT already closed report an
// error that is ignored.
func (t *dbTracker) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, db := range t.dbs {
		_ = db.Close()
	}
	t.dbs = nil
}

// LoadConfig reads a node home's config/config.toml.
func LoadConfig(home string) (*cmtcfg.Config, error) {
	cfg := cmtcfg.DefaultConfig()
	path := filepath.Join(home, "config", "config.toml")
	v := viper.New()
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("abci: reading %s (run \"cybertensor chain init\" first): %w", path, err)
	}
	if err := v.Unmarshal(cfg); err != nil {
		return nil, fmt.Errorf("abci: parsing %s: %w", path, err)
	}
	cfg.SetRoot(home)
	if err := cfg.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("abci: %s: %w", path, err)
	}
	return cfg, nil
}

// ReadGenesis reads a node home's CometBFT genesis and the chain genesis
// in its app_state.
func ReadGenesis(home string) (*cmttypes.GenesisDoc, chain.Genesis, error) {
	var gen chain.Genesis
	doc, err := cmttypes.GenesisDocFromFile(filepath.Join(home, "config", "genesis.json"))
	if err != nil {
		return nil, gen, fmt.Errorf("abci: %w", err)
	}
	if err := json.Unmarshal(doc.AppState, &gen); err != nil {
		return nil, gen, fmt.Errorf("abci: genesis app_state: %w", err)
	}
	if gen.ChainID != doc.ChainID {
		return nil, gen, fmt.Errorf("abci: genesis chain_id %q but app_state chain_id %q", doc.ChainID, gen.ChainID)
	}
	return doc, gen, nil
}

// StartNode starts the node in home: it opens the application database,
// replays what CometBFT has and the application lacks, and joins
// consensus. opts configure the application database (chain.WithHistory).
func StartNode(home string, epoch chain.EpochFunc, log *slog.Logger, opts ...chain.DBOption) (*Node, error) {
	cfg, err := LoadConfig(home)
	if err != nil {
		return nil, err
	}
	doc, gen, err := ReadGenesis(home)
	if err != nil {
		return nil, err
	}
	db, err := chain.OpenDB(filepath.Join(home, dbFile), gen, epoch, opts...)
	if err != nil {
		return nil, err
	}
	pv := privval.LoadOrGenFilePV(cfg.PrivValidatorKeyFile(), cfg.PrivValidatorStateFile())
	nodeKey, err := p2p.LoadOrGenNodeKey(cfg.NodeKeyFile())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("abci: node key: %w", err)
	}
	tracker := &dbTracker{}
	n, err := cmtnode.NewNode(cfg, pv, nodeKey, proxy.NewLocalClientCreator(NewApp(db)),
		func() (*cmttypes.GenesisDoc, error) { return doc, nil },
		tracker.provide, cmtnode.DefaultMetricsProvider(cfg.Instrumentation),
		slogAdapter{log.With("component", "cometbft")})
	if err != nil {
		tracker.closeAll()
		db.Close()
		return nil, fmt.Errorf("abci: creating node: %w", err)
	}
	if err := n.Start(); err != nil {
		tracker.closeAll()
		db.Close()
		return nil, fmt.Errorf("abci: starting node: %w", err)
	}
	return &Node{cmt: n, db: db, home: home, cmtDBs: tracker}, nil
}

// RPCAddress is the node's RPC listen address (tcp://host:port).
func (n *Node) RPCAddress() string { return n.cmt.Config().RPC.ListenAddress }

// NodeID is the node's p2p ID.
func (n *Node) NodeID() string { return string(n.cmt.NodeInfo().ID()) }

// Stop stops consensus and closes the application database.
func (n *Node) Stop() error {
	var errs []error
	if n.cmt.IsRunning() {
		errs = append(errs, n.cmt.Stop())
		n.cmt.Wait()
	}
	n.cmtDBs.closeAll()
	errs = append(errs, n.db.Close())
	return errors.Join(errs...)
}

// InitOptions configure a new node home.
type InitOptions struct {
	// Moniker names the node.
	Moniker string
	// P2PAddress and RPCAddress are the listen addresses.
	P2PAddress string
	RPCAddress string
	// PersistentPeers is a comma-separated list of id@host:port.
	PersistentPeers string
	// BlockTime is the target time between blocks (CometBFT's
	// timeout_commit).
	BlockTime time.Duration
}

// DefaultInitOptions listen on all interfaces on CometBFT's default ports
// with one-second blocks.
func DefaultInitOptions() InitOptions {
	return InitOptions{Moniker: "cybertensor", P2PAddress: "tcp://0.0.0.0:26656", RPCAddress: "tcp://127.0.0.1:26657", BlockTime: time.Second}
}

func nodeConfig(home string, o InitOptions) *cmtcfg.Config {
	cfg := cmtcfg.DefaultConfig()
	cfg.SetRoot(home)
	cfg.Moniker = o.Moniker
	cfg.P2P.ListenAddress = o.P2PAddress
	cfg.P2P.PersistentPeers = o.PersistentPeers
	cfg.P2P.AllowDuplicateIP = true
	cfg.P2P.AddrBookStrict = false
	cfg.RPC.ListenAddress = o.RPCAddress
	cfg.Consensus.TimeoutCommit = o.BlockTime
	cfg.Consensus.TimeoutPropose = max(o.BlockTime, 500*time.Millisecond)
	cfg.Mempool.Size = 50_000
	cfg.Mempool.MaxTxsBytes = 1 << 30
	cfg.TxIndex.Indexer = "kv"
	return cfg
}

// Init creates a single-validator node home: config, keys and a genesis
// whose app_state is gen.
func Init(home string, gen chain.Genesis, o InitOptions) error {
	homes, err := Testnet([]string{home}, gen, []InitOptions{o})
	if err != nil {
		return err
	}
	_ = homes
	return nil
}

// Testnet creates one node home per entry of homes, all validators of one
// genesis with equal power, each o[i] configuring its node. It refuses to
// overwrite an existing home.
func Testnet(homes []string, gen chain.Genesis, o []InitOptions) ([]string, error) {
	if len(homes) == 0 || len(homes) != len(o) {
		return nil, errors.New("abci: testnet needs one option set per home")
	}
	for _, h := range homes {
		if _, err := os.Stat(filepath.Join(h, "config", "genesis.json")); err == nil {
			return nil, fmt.Errorf("abci: %s already holds a node (genesis.json exists)", h)
		}
	}
	appState, err := json.Marshal(gen)
	if err != nil {
		return nil, err
	}
	doc := &cmttypes.GenesisDoc{
		ChainID:         gen.ChainID,
		GenesisTime:     time.Unix(0, 0).UTC(),
		ConsensusParams: cmttypes.DefaultConsensusParams(),
		AppState:        appState,
	}
	ids := make([]string, len(homes))
	for i, h := range homes {
		cfg := nodeConfig(h, o[i])
		if err := os.MkdirAll(filepath.Join(h, "config"), 0o700); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Join(h, "data"), 0o700); err != nil {
			return nil, err
		}
		pv := privval.GenFilePV(cfg.PrivValidatorKeyFile(), cfg.PrivValidatorStateFile())
		pv.Save()
		nodeKey, err := p2p.LoadOrGenNodeKey(cfg.NodeKeyFile())
		if err != nil {
			return nil, err
		}
		ids[i] = string(nodeKey.ID())
		pub, err := pv.GetPubKey()
		if err != nil {
			return nil, err
		}
		doc.Validators = append(doc.Validators, cmttypes.GenesisValidator{
			Address: pub.Address(), PubKey: pub, Power: 10, Name: o[i].Moniker,
		})
	}
	if err := doc.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("abci: genesis: %w", err)
	}
	for i, h := range homes {
		if len(homes) > 1 && o[i].PersistentPeers == "" {
			var peers []string
			for j := range homes {
				if j != i {
					peers = append(peers, ids[j]+"@"+strings.TrimPrefix(strings.Replace(o[j].P2PAddress, "0.0.0.0", "127.0.0.1", 1), "tcp://"))
				}
			}
			o[i].PersistentPeers = strings.Join(peers, ",")
		}
		cfg := nodeConfig(h, o[i])
		cmtcfg.WriteConfigFile(filepath.Join(h, "config", "config.toml"), cfg)
		if err := doc.SaveAs(filepath.Join(h, "config", "genesis.json")); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// slogAdapter lets CometBFT log through slog. CometBFT's info logs are
// chatty, so they go to slog's debug level; so do the errors it logs in
// normal operation (see routineError).
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Debug(msg string, kv ...any) { a.l.Debug(msg, kv...) }
func (a slogAdapter) Info(msg string, kv ...any)  { a.l.Debug(msg, kv...) }
func (a slogAdapter) Error(msg string, kv ...any) {
	if routineError(msg, kv) {
		a.l.Debug(msg, kv...)
		return
	}
	a.l.Error(msg, kv...)
}

// routineErrors are what CometBFT logs as errors when nothing is wrong
// with the node: its listeners closing on a normal stop, a client hanging
// up or resetting its websocket, or a client asking for a block's results a moment
// before the node saved them (the client asks again). Each is a message
// and, if not empty, a part of its error.
var routineErrors = []struct{ msg, err string }{
	{"Stopped accept routine, as transport is closed", ""},
	{"Error serving server", "use of closed network connection"},
	{"error while stopping connection", "already stopped"},
	{"Failed to read request", ""}, // a websocket client closed or reset its connection
	{"failed to LoadFinalizeBlockResponse", "could not find results for height"},
}

// routineError says whether CometBFT's error log is one of routineErrors.
func routineError(msg string, kv []any) bool {
	for _, r := range routineErrors {
		if msg != r.msg {
			continue
		}
		if r.err == "" {
			return true
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if k, _ := kv[i].(string); (k == "err" || k == "error") && strings.Contains(fmt.Sprint(kv[i+1]), r.err) {
				return true
			}
		}
	}
	return false
}
func (a slogAdapter) With(kv ...any) cmtlog.Logger {
	return slogAdapter{a.l.With(kv...)}
}
