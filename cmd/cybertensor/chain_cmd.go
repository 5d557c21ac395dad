package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/abci"
	"github.com/cybertensor/cybertensor/chainlink/comet"
	"github.com/cybertensor/cybertensor/wallet"
)

// nodeHome is where "chain init" puts a node by default.
func (a *app) nodeHome(flag string) string {
	if flag != "" {
		return flag
	}
	return filepath.Join(a.home, "chain")
}

func (a *app) chainCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chain",
		Short: "Create and run the chain: a CometBFT node serving the cybertensor application",
	}
	cmd.AddCommand(a.chainInit(), a.chainTestnet(), a.chainRun(), a.chainStatus())
	return cmd
}

// genesisFlags choose the chain's genesis.
type genesisFlags struct {
	chainID  string
	root     string
	rootFund string
	funds    []string
	dev      bool
}

func addGenesisFlags(cmd *cobra.Command, g *genesisFlags) {
	cmd.Flags().StringVar(&g.chainID, "chain-id", "cybertensor-dev", "chain ID")
	cmd.Flags().StringVar(&g.root, "root", "", "chain root address (may call every sudo_set_*); default: the coldkey of wallet \"default\"")
	cmd.Flags().StringVar(&g.rootFund, "root-balance", "1000000", "tokens the root starts with")
	cmd.Flags().StringArrayVar(&g.funds, "fund", nil, "ADDRESS=TOKENS: another initial balance (repeatable)")
	cmd.Flags().BoolVar(&g.dev, "dev", true, "fast dev defaults: tempo 20, cheap registration, a faucet")
}

func (a *app) buildGenesis(g *genesisFlags) (chain.Genesis, error) {
	rootStr := g.root
	if rootStr == "" {
		s, err := a.store()
		if err != nil {
			return chain.Genesis{}, err
		}
		info, err := s.Info("default")
		if err != nil {
			return chain.Genesis{}, usageError(fmt.Errorf("no --root given and no wallet \"default\" (create one with: cybertensor wallet new --name default): %w", err))
		}
		rootStr = info.Coldkey.Address
	}
	root, _, err := wallet.ParseAddress(rootStr)
	if err != nil {
		return chain.Genesis{}, usageError(fmt.Errorf("--root: %w", err))
	}
	rootAmt, err := parseAmount(g.rootFund)
	if err != nil {
		return chain.Genesis{}, usageError(fmt.Errorf("--root-balance: %w", err))
	}
	balances := []chain.GenesisBalance{{Address: root, Amount: rootAmt}}
	for _, f := range g.funds {
		addrStr, amtStr, ok := strings.Cut(f, "=")
		if !ok {
			return chain.Genesis{}, usageError(fmt.Errorf("--fund %q: want ADDRESS=TOKENS", f))
		}
		addr, _, err := wallet.ParseAddress(addrStr)
		if err != nil {
			return chain.Genesis{}, usageError(fmt.Errorf("--fund %q: %w", f, err))
		}
		amt, err := parseAmount(amtStr)
		if err != nil {
			return chain.Genesis{}, usageError(fmt.Errorf("--fund %q: %w", f, err))
		}
		if addr == root {
			balances[0].Amount += amt
			continue
		}
		balances = append(balances, chain.GenesisBalance{Address: addr, Amount: amt})
	}
	gen := chain.DefaultGenesis(g.chainID, root)
	if g.dev {
		gen = chain.LocalnetGenesis(g.chainID, root, nil)
	}
	gen.Balances = balances
	return gen, nil
}

func (a *app) chainInit() *cobra.Command {
	var g genesisFlags
	var nodeHome, p2p, rpc string
	var blockTime time.Duration
	cmd := &cobra.Command{
		Use:     "init",
		Short:   "Create a single-validator chain node (zero setup)",
		PreRunE: func(*cobra.Command, []string) error { return a.homeErr },
		Long: `Create a node home with CometBFT config, validator and node keys, and a
genesis whose root is the coldkey of wallet "default" (or --root). Then start it
with "cybertensor chain run".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			gen, err := a.buildGenesis(&g)
			if err != nil {
				return err
			}
			home := a.nodeHome(nodeHome)
			o := abci.DefaultInitOptions()
			o.P2PAddress, o.RPCAddress, o.BlockTime = p2p, rpc, blockTime
			if err := abci.Init(home, gen, o); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created chain %q in %s (root %s).\nStart it with: cybertensor chain run --node-home %s\n", gen.ChainID, home, gen.Root, home)
			return nil
		},
	}
	addGenesisFlags(cmd, &g)
	cmd.Flags().StringVar(&nodeHome, "node-home", "", "node directory (default <home>/chain)")
	cmd.Flags().StringVar(&p2p, "p2p", "tcp://0.0.0.0:26656", "p2p listen address")
	cmd.Flags().StringVar(&rpc, "rpc", "tcp://127.0.0.1:26657", "RPC listen address")
	cmd.Flags().DurationVar(&blockTime, "block-time", time.Second, "target time between blocks")
	return cmd
}

func (a *app) chainTestnet() *cobra.Command {
	var g genesisFlags
	var n int
	var out, hosts string
	var p2pPort, rpcPort int
	var blockTime time.Duration
	cmd := &cobra.Command{
		Use:   "testnet",
		Short: "Create the homes of an N-validator network (genesis, keys, peers)",
		Long: `Create one node home per validator under --out (node0, node1, …), sharing a
genesis and listing each other as peers. With --hosts (one per validator) each
node listens on its host; without, all run on 127.0.0.1 with consecutive ports.
Copy each home to its machine and run "cybertensor chain run --node-home DIR".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 || n > 64 {
				return usageError(fmt.Errorf("--validators %d: want 1 to 64", n))
			}
			var hostList []string
			if hosts != "" {
				hostList = strings.Split(hosts, ",")
				if len(hostList) != n {
					return usageError(fmt.Errorf("--hosts lists %d hosts for %d validators", len(hostList), n))
				}
				for _, h := range hostList {
					if net.ParseIP(h) == nil {
						return usageError(fmt.Errorf("--hosts: %q is not an IP address", h))
					}
				}
			}
			gen, err := a.buildGenesis(&g)
			if err != nil {
				return err
			}
			var homes []string
			var opts []abci.InitOptions
			for i := range n {
				host, pp, rp := "127.0.0.1", p2pPort+2*i, rpcPort+2*i
				if hostList != nil {
					host, pp, rp = hostList[i], p2pPort, rpcPort
				}
				homes = append(homes, filepath.Join(out, "node"+strconv.Itoa(i)))
				opts = append(opts, abci.InitOptions{
					Moniker: "validator" + strconv.Itoa(i), BlockTime: blockTime,
					P2PAddress: fmt.Sprintf("tcp://%s:%d", host, pp), RPCAddress: fmt.Sprintf("tcp://%s:%d", host, rp),
				})
			}
			if _, err := abci.Testnet(homes, gen, opts); err != nil {
				return err
			}
			for i, h := range homes {
				fmt.Fprintf(cmd.OutOrStdout(), "%s  p2p %s  rpc %s\n", h, opts[i].P2PAddress, opts[i].RPCAddress)
			}
			return nil
		},
	}
	addGenesisFlags(cmd, &g)
	cmd.Flags().IntVar(&n, "validators", 4, "number of validators")
	cmd.Flags().StringVar(&out, "out", "testnet", "directory for the node homes")
	cmd.Flags().StringVar(&hosts, "hosts", "", "comma-separated IP per validator (default: all on 127.0.0.1)")
	cmd.Flags().IntVar(&p2pPort, "p2p-port", 26656, "first p2p port")
	cmd.Flags().IntVar(&rpcPort, "rpc-port", 26657, "first RPC port")
	cmd.Flags().DurationVar(&blockTime, "block-time", time.Second, "target time between blocks")
	return cmd
}

func (a *app) chainRun() *cobra.Command {
	var nodeHome string
	var g genesisFlags
	var historyBlocks uint64
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a chain node until interrupted (creating a single-validator dev node first if there is none)",
		Long: `Run the chain node in --node-home (default <home>/chain). With no node there yet,
one is created first exactly as "chain init" would (single validator, dev
defaults, root = the coldkey of wallet "default"), so a fresh machine needs no
setup beyond a wallet. One process runs a node home at a time: a second "chain
run" on it exits at once, naming the process that runs it. The node keeps
--history-blocks blocks of history, so "metagraph --block H" is answered for
the last that many blocks (0 keeps none: only the latest block).`,
		Args:    cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error { return a.homeErr },
		RunE: func(cmd *cobra.Command, _ []string) error {
			home := a.nodeHome(nodeHome)
			if _, err := os.Stat(filepath.Join(home, "config", "genesis.json")); err != nil {
				gen, err := a.buildGenesis(&g)
				if err != nil {
					return err
				}
				if err := abci.Init(home, gen, abci.DefaultInitOptions()); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created single-validator chain %q in %s (root %s)\n", gen.ChainID, home, gen.Root)
			}
			n, err := abci.StartNode(home, a.epoch, a.log, chain.WithHistory(historyBlocks))
			if err != nil {
				return inUseAs("chain home "+home, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "chain node %s running; RPC %s (Ctrl-C to stop)\n", n.NodeID(), n.RPCAddress())
			<-cmd.Context().Done()
			a.log.Info("stopping chain node")
			return n.Stop()
		},
	}
	cmd.Flags().StringVar(&nodeHome, "node-home", "", "node directory (default <home>/chain)")
	cmd.Flags().Uint64Var(&historyBlocks, "history-blocks", chain.DefaultHistoryBlocks, "blocks of history kept for reads at a past height (metagraph --block); 0 keeps none")
	addGenesisFlags(cmd, &g)
	return cmd
}

func (a *app) chainStatus() *cobra.Command {
	var f chainFlags
	var height uint64
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the chain's latest height and app hash (or the app hash after --height)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withChain(cmd, &f, func(ctx context.Context, c *comet.Client) error {
				head, err := c.Head(ctx)
				if err != nil {
					return err
				}
				out := map[string]any{"chain_id": c.ChainID(), "height": head.Height, "app_hash": strings.ToUpper(hex.EncodeToString(head.AppHash))}
				if height != 0 {
					hash, err := c.AppHashAt(ctx, height)
					if err != nil {
						return err
					}
					out["height"], out["app_hash"] = height, strings.ToUpper(hex.EncodeToString(hash))
				}
				if f.json {
					return writeJSON(cmd.OutOrStdout(), out)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "chain %s height %d app hash %s\n", out["chain_id"], out["height"], out["app_hash"])
				return nil
			})
		},
	}
	addChainFlags(cmd, &f, a.env.getenv)
	cmd.Flags().Uint64Var(&height, "height", 0, "report the app hash after this block instead of the latest")
	return cmd
}
