package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/dht"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/neuron"
	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/wallet"
)

// knowledgeDHTChain names the DHT's record namespace for the transient
// nodes of knowledge commands; they use only provider records.
const knowledgeDHTChain = "cybertensor"

// openLibrary opens the library in <home>/knowledge.
func (a *app) openLibrary(key *wallet.PrivateKey, opts ...knowledge.Option) (*knowledge.Library, error) {
	if a.homeErr != nil {
		return nil, a.homeErr
	}
	cfg := knowledge.DefaultConfig(filepath.Join(a.home, "knowledge"))
	cfg.Key, cfg.Logger = key, a.log
	return knowledge.Open(cfg, opts...)
}

// knowledgeError gives errors caused by the user's input exit status 2.
func knowledgeError(err error) error {
	for _, e := range []error{knowledge.ErrBadCID, knowledge.ErrTooLarge, knowledge.ErrBadObject} {
		if errors.Is(err, e) {
			return usageError(err)
		}
	}
	return err
}

func parseCIDArg(s string) (cid.Cid, error) {
	c, err := knowledge.ParseCID(s)
	if err != nil {
		return cid.Undef, usageError(err)
	}
	return c, nil
}

func (a *app) knowledgeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "knowledge",
		Short: "Publish, fetch, search and keep content-addressed knowledge",
		Long: `The knowledge library lives in <home>/knowledge. Objects are signed by a
hotkey and addressed by CIDv1; bodies are chunked as "ipfs add --cid-version=1"
does, so a body's CID is the one IPFS computes for the same bytes.

publish stores and pins locally; "knowledge serve" shares the library on the
swarm (DHT provider records and the /cybertensor/knowledge/1.0.0 protocol);
"knowledge get --peer" fetches what is not local from the swarm.`,
	}
	cmd.AddCommand(a.knowledgePublish(), a.knowledgeGet(), a.knowledgeSearch(), a.knowledgeList(),
		a.knowledgePin(true), a.knowledgePin(false), a.knowledgeGC(), a.knowledgeServe())
	return cmd
}

// objectJSON is an object as commands print it.
type objectJSON struct {
	CID       string    `json:"cid"`
	Body      string    `json:"body"`
	Size      uint64    `json:"size"`
	MediaType string    `json:"media_type"`
	Title     string    `json:"title"`
	Tags      []string  `json:"tags,omitempty"`
	Netuid    uint16    `json:"netuid"`
	Links     []string  `json:"links,omitempty"`
	Author    string    `json:"author"`
	Time      time.Time `json:"time"`
}

func toJSON(o *knowledge.Object) objectJSON {
	j := objectJSON{CID: o.CID.String(), Body: o.Body.String(), Size: o.Size, MediaType: o.MediaType, Title: o.Title,
		Tags: o.Tags, Netuid: o.Netuid, Author: o.AuthorAddress().String(), Time: o.Time}
	for _, l := range o.Links {
		j.Links = append(j.Links, l.String())
	}
	return j
}

func (a *app) knowledgePublish() *cobra.Command {
	var keys keyFlags
	var text, title, mediaType string
	var tags, links []string
	var netuid uint16
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "publish FILE | - | --text TEXT",
		Short: "Store a file, stdin or text as a knowledge object signed by the hotkey, and pin it",
		Long: fmt.Sprintf(`Store a file (or stdin, as "-", or --text) as a knowledge object signed by the
hotkey, and pin it.

A body may be at most %d MiB (%d bytes). A larger file is refused before it is
read; stdin is refused as soon as it passes the limit.

Ctrl-C stops a publish within a second and stores nothing. Had the process died
instead (killed, a crash), the blocks it wrote belong to no object, and the next
"knowledge gc" removes them (library.db keeps its size on disk: bbolt reuses the
freed space for later writes).`, defaultMaxObjectSize>>20, defaultMaxObjectSize),
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body io.Reader
			switch {
			case len(args) == 1 && text != "":
				return usageError(errors.New("give a FILE or --text, not both"))
			case len(args) == 1 && args[0] == "-":
				body = cmd.InOrStdin()
				if f, ok := body.(*os.File); ok {
					defer interruptReads(cmd.Context(), f)()
				}
			case len(args) == 1:
				f, err := os.Open(args[0])
				if err != nil {
					return usageError(err)
				}
				defer f.Close()
				if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > defaultMaxObjectSize {
					return usageError(fmt.Errorf("%s is %d bytes, over the %d MiB limit of a knowledge object", args[0], fi.Size(), defaultMaxObjectSize>>20))
				}
				defer interruptReads(cmd.Context(), f)()
				body = f
				if title == "" {
					title = filepath.Base(args[0])
				}
			case text != "":
				body = strings.NewReader(text)
				if mediaType == "" {
					mediaType = "text/plain; charset=utf-8"
				}
			default:
				return usageError(errors.New("give a FILE or --text"))
			}
			m := knowledge.Meta{MediaType: mediaType, Title: title, Tags: tags, Netuid: netuid}
			for _, l := range links {
				c, err := parseCIDArg(l)
				if err != nil {
					return err
				}
				m.Links = append(m.Links, c)
			}
			if m.MediaType == "" && len(args) == 1 {
				m.MediaType = guessMediaType(args[0])
			}
			hot, err := a.hotkey(&keys)
			if err != nil {
				return err
			}
			lib, err := a.openLibrary(hot)
			if err != nil {
				return err
			}
			defer lib.Close()
			o, err := lib.Publish(cmd.Context(), body, m)
			if err != nil && cmd.Context().Err() != nil {
				return fmt.Errorf("publish interrupted (%w); nothing was stored", cmd.Context().Err())
			}
			if err != nil {
				return knowledgeError(err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), toJSON(o))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published %s (%d bytes, body %s)\n", o.CID, o.Size, o.Body)
			return nil
		},
	}
	addHotkeyFlags(cmd, &keys)
	cmd.Flags().StringVar(&text, "text", "", "publish this text instead of a file")
	cmd.Flags().StringVar(&title, "title", "", "title (default: the file name)")
	cmd.Flags().StringVar(&mediaType, "media-type", "", "media type (default: from the file name, text/plain for --text)")
	cmd.Flags().StringSliceVar(&tags, "tags", nil, "comma-separated tags")
	cmd.Flags().StringArrayVar(&links, "link", nil, "CID of a related object (repeatable)")
	cmd.Flags().Uint16Var(&netuid, "netuid", 1, "subnet")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// defaultMaxObjectSize is the library's limit on a body.
var defaultMaxObjectSize = knowledge.DefaultConfig("").MaxObjectSize

// interruptReads makes a read of f blocked on a pipe or terminal return
// when ctx is done (regular files never block long); stop undoes it.
func interruptReads(ctx context.Context, f *os.File) (stop func()) {
	s := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	return func() { s() }
}

func guessMediaType(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".txt":
		return "text/plain; charset=utf-8"
	case ".md", ".markdown":
		return "text/markdown; charset=utf-8"
	case ".json":
		return "application/json"
	case ".html", ".htm":
		return "text/html; charset=utf-8"
	case ".csv":
		return "text/csv; charset=utf-8"
	case ".pdf":
		return "application/pdf"
	}
	return "application/octet-stream"
}

// swarmFlags start a transient neuron for commands that reach the swarm.
type swarmFlags struct {
	keys    keyFlags
	peers   []string
	listen  []string
	timeout time.Duration
}

func addSwarmFlags(cmd *cobra.Command, f *swarmFlags) {
	addHotkeyFlags(cmd, &f.keys)
	cmd.Flags().StringArrayVar(&f.peers, "peer", nil, "multiaddr (with /p2p/) of a neuron to join the swarm through (repeatable)")
	cmd.Flags().StringArrayVar(&f.listen, "listen", []string{"/ip4/0.0.0.0/tcp/0"}, "libp2p listen address (repeatable)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long to wait for the swarm")
	addCheck(cmd, func() error {
		if err := checkPeers("peer", f.peers); err != nil {
			return err
		}
		return checkMultiaddrs("listen", f.listen)
	})
}

// noRegistry answers that no hotkey is registered: transient neurons keep
// no neuron records.
type noRegistry struct{}

func (noRegistry) Lookup(context.Context, uint16, wallet.Address) (uint16, bool, error) {
	return 0, false, nil
}

// swarm starts a neuron with the hotkey, joins the DHT through the peers
// and opens the library on it. stop closes all three.
func (a *app) swarm(ctx context.Context, f *swarmFlags) (lib *knowledge.Library, n *node.Node, stop func(), err error) {
	var boot []peer.AddrInfo
	for _, s := range f.peers {
		info, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, nil, nil, usageError(fmt.Errorf("--peer %q: %w", s, err))
		}
		boot = append(boot, *info)
	}
	hot, err := a.hotkey(&f.keys)
	if err != nil {
		return nil, nil, nil, err
	}
	ncfg := node.DefaultConfig(hot)
	ncfg.ListenAddrs, ncfg.Logger = f.listen, a.log
	n, err = node.New(ctx, ncfg, node.WithBootstrap(f.peers...))
	if err != nil {
		return nil, nil, nil, err
	}
	dcfg := dht.DefaultConfig(knowledgeDHTChain)
	dcfg.Bootstrap, dcfg.Logger = boot, a.log
	d, err := dht.New(n, hot, noRegistry{}, dcfg)
	if err != nil {
		n.Close()
		return nil, nil, nil, err
	}
	lib, err = a.openLibrary(hot, knowledge.WithNetwork(n, d))
	if err != nil {
		d.Close()
		n.Close()
		return nil, nil, nil, err
	}
	stop = func() {
		lib.Close()
		d.Close()
		n.Close()
	}
	if len(boot) > 0 {
		// Wait (bounded) for the DHT to know someone.
		deadline := time.Now().Add(min(f.timeout, 15*time.Second))
		for d.RoutingTableSize() == 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return lib, n, stop, nil
}

// progress prints a fetch's progress on stderr for bodies over 1 MiB.
type progress struct {
	w    io.Writer
	last int64
}

func (p *progress) update(done, total int64) {
	if total < 1<<20 || (done-p.last < 1<<20 && done != total) {
		return
	}
	p.last = done
	fmt.Fprintf(p.w, "\rfetched %.1f of %.1f MiB (%d%%)", float64(done)/(1<<20), float64(total)/(1<<20), done*100/total)
	if done == total {
		fmt.Fprintln(p.w)
	}
}

// libraryHolding opens the library holding c: the local one, or with
// --peer one on a transient neuron that first fetches c from the swarm
// (within --timeout, its progress on progressTo). stop closes what it
// opened.
func (a *app) libraryHolding(ctx context.Context, c cid.Cid, f *swarmFlags, progressTo io.Writer) (lib *knowledge.Library, stop func(), err error) {
	if len(f.peers) == 0 {
		if lib, err = a.openLibrary(nil); err != nil {
			return nil, nil, err
		}
		if !lib.Holds(c) {
			lib.Close()
			return nil, nil, fmt.Errorf("%w: %s is not in the library; give --peer to fetch it from the swarm", knowledge.ErrNotFound, c)
		}
		return lib, func() { lib.Close() }, nil
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	lib, _, stopSwarm, err := a.swarm(ctx, f)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	stop = func() {
		cancel()
		stopSwarm()
	}
	p := &progress{w: progressTo}
	opts := []knowledge.FetchOption{knowledge.WithProgress(p.update)}
	for _, s := range f.peers {
		info, _ := peer.AddrInfoFromString(s)
		opts = append(opts, knowledge.WithProviders(*info))
	}
	if err := lib.Fetch(ctx, c, opts...); err != nil {
		stop()
		return nil, nil, knowledgeError(err)
	}
	return lib, stop, nil
}

func (a *app) knowledgeGet() *cobra.Command {
	var f swarmFlags
	var out string
	cmd := &cobra.Command{
		Use:   "get CID",
		Short: "Write an object's body (or a body by its own CID) to stdout or -o FILE, fetching it from the swarm with --peer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := parseCIDArg(args[0])
			if err != nil {
				return err
			}
			lib, stop, err := a.libraryHolding(cmd.Context(), c, &f, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer stop()
			w := cmd.OutOrStdout()
			var tmp *os.File
			if out != "" && out != "-" {
				if tmp, err = os.CreateTemp(filepath.Dir(out), ".knowledge-*"); err != nil {
					return err
				}
				defer os.Remove(tmp.Name())
				w = tmp
			}
			if _, err := lib.Get(cmd.Context(), c, w); err != nil {
				if tmp != nil {
					tmp.Close()
				}
				return knowledgeError(err)
			}
			if tmp != nil {
				if err := tmp.Close(); err != nil {
					return err
				}
				return os.Rename(tmp.Name(), out)
			}
			return nil
		},
	}
	addSwarmFlags(cmd, &f)
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the body to this file instead of stdout")
	return cmd
}

func (a *app) knowledgeSearch() *cobra.Command {
	var limit int
	var local, asJSON bool
	cmd := &cobra.Command{
		Use:   "search QUERY",
		Short: "Rank the library's objects (and announced ones) by full-text relevance",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lib, err := a.openLibrary(nil)
			if err != nil {
				return err
			}
			defer lib.Close()
			hits := lib.Search(strings.Join(args, " "), limit, local)
			if asJSON {
				out := make([]hitJSON, 0, len(hits))
				for _, h := range hits {
					out = append(out, hitJSON{Hit: h, CID: h.CID.String()})
				}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			rows := [][]string{{"SCORE", "CID", "TITLE", "TAGS", "SIZE", "WHERE"}}
			for _, h := range hits {
				where := "local"
				if !h.Local {
					where = "announced"
				}
				rows = append(rows, []string{fmt.Sprintf("%.3f", h.Score), h.CID.String(), h.Title, strings.Join(h.Tags, ","), fmt.Sprint(h.Size), where})
			}
			return table(cmd.OutOrStdout(), rows)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 10, "most results")
	cmd.Flags().BoolVar(&local, "local", false, "only objects in the local store")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// hitJSON is a search hit as "search --json" prints it.
type hitJSON struct {
	knowledge.Hit
	CID string `json:"cid"`
}

// entryJSON is a library entry as "ls --json" prints it.
type entryJSON struct {
	knowledge.Entry
	CID    string      `json:"cid"`
	Object *objectJSON `json:"object,omitempty"`
}

func (a *app) knowledgeList() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the library: objects and bodies, with size and pin state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lib, err := a.openLibrary(nil)
			if err != nil {
				return err
			}
			defer lib.Close()
			es, err := lib.List()
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]entryJSON, 0, len(es))
				for _, e := range es {
					j := entryJSON{Entry: e, CID: e.CID.String()}
					if e.Object != nil {
						o := toJSON(e.Object)
						j.Object = &o
					}
					out = append(out, j)
				}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			rows := [][]string{{"CID", "TITLE", "SIZE", "PINNED", "ADDED"}}
			for _, e := range es {
				title := ""
				if e.Object != nil {
					title = e.Object.Title
				}
				rows = append(rows, []string{e.CID.String(), title, fmt.Sprint(e.Size), fmt.Sprint(e.Pinned), e.Added.Format(time.RFC3339)})
			}
			used, limit := lib.Usage()
			if err := table(cmd.OutOrStdout(), rows); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d entries, %.1f of %.0f MiB used\n", len(es), float64(used)/(1<<20), float64(limit)/(1<<20))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) knowledgePin(pin bool) *cobra.Command {
	use, short := "pin CID", "Keep an object through garbage collection"
	if !pin {
		use, short = "unpin CID", "Let garbage collection remove an object"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := parseCIDArg(args[0])
			if err != nil {
				return err
			}
			lib, err := a.openLibrary(nil)
			if err != nil {
				return err
			}
			defer lib.Close()
			if pin {
				err = lib.Pin(c)
			} else {
				err = lib.Unpin(c)
			}
			if err != nil {
				return knowledgeError(err)
			}
			verb := "pinned"
			if !pin {
				verb = "unpinned"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", verb, c)
			return nil
		},
	}
}

func (a *app) knowledgeGC() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove unpinned objects and the blocks only they need",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lib, err := a.openLibrary(nil)
			if err != nil {
				return err
			}
			defer lib.Close()
			st, err := lib.GC()
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d roots, %d blocks, %d bytes\n", st.Roots, st.Blocks, st.Bytes)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) knowledgeServe() *cobra.Command {
	var f swarmFlags
	var chain chainFlags
	var netuid uint16
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Share the library on the swarm until interrupted: provide pinned objects on the DHT and serve their blocks; with --netuid, also announce them on the subnet's gossip",
		Long: `Share the library on the swarm until interrupted: provide pinned objects on the DHT and serve their blocks.

With --netuid N (and --chain), the hotkey, which must be registered on subnet N, also joins the subnet's swarm:
it announces the objects it published for subnet N on the subnet's knowledge topic (now, when new neurons
subscribe, and every 10 minutes), and keeps what others announce in the library's index for "knowledge search".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("netuid") {
				chain.timeout = f.timeout
				return a.serveOnSubnet(cmd, &f, &chain, netuid)
			}
			lib, n, stop, err := a.swarm(cmd.Context(), &f)
			if err != nil {
				return err
			}
			defer stop()
			es, err := lib.List()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			if err := lib.Reprovide(ctx); err != nil {
				a.log.Warn("providing the library on the DHT", "err", err)
			}
			cancel()
			fmt.Fprintf(cmd.OutOrStdout(), "serving %d objects as %s (Ctrl-C to stop)\n", len(es), strings.Join(n.FullAddrs(), " "))
			<-cmd.Context().Done()
			return nil
		},
	}
	addSwarmFlags(cmd, &f)
	def := defaultChainURL
	if v := a.env.getenv(envChain); v != "" {
		def = v
	}
	cmd.Flags().StringVar(&chain.url, "chain", def, "chain RPC URL, with --netuid (env "+envChain+")")
	netuidFlag(cmd, &netuid)
	return cmd
}

// serveOnSubnet serves the library as a member of subnet netuid's swarm.
func (a *app) serveOnSubnet(cmd *cobra.Command, f *swarmFlags, cf *chainFlags, netuid uint16) error {
	if a.homeErr != nil {
		return a.homeErr
	}
	hot, err := a.hotkey(&f.keys)
	if err != nil {
		return err
	}
	c, err := a.dialChain(cmd.Context(), cf)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), cf.timeout)
	defer cancel()
	nrn, err := c.Neuron(ctx, netuid, hot.PublicKey().Address())
	if errors.Is(err, chainlink.ErrNotFound) {
		return fmt.Errorf("hotkey %s holds no uid on subnet %d: only registered neurons may announce (cybertensor subnets register --netuid %d)", hot.PublicKey().Address(), netuid, netuid)
	}
	if err != nil {
		return err
	}
	ncfg := node.DefaultConfig(hot)
	ncfg.ListenAddrs, ncfg.Logger = f.listen, a.log
	n, err := node.New(ctx, ncfg)
	if err != nil {
		return err
	}
	defer n.Close()
	scfg := neuron.DefaultSwarmConfig()
	scfg.Bootstrap = f.peers
	sw, err := neuron.JoinSwarm(ctx, n, hot, c, netuid, nrn.UID, "library", nil, scfg, nil, a.log)
	if err != nil {
		return err
	}
	defer sw.Close()
	lib, err := sw.OpenLibrary(filepath.Join(a.home, "knowledge"), hot, nil)
	if err != nil {
		return err
	}
	pctx, pcancel := context.WithTimeout(cmd.Context(), f.timeout)
	if err := lib.Reprovide(pctx); err != nil {
		a.log.Warn("providing the library on the DHT", "err", err)
	}
	pcancel()
	es, err := lib.List()
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "serving %d objects as uid %d of subnet %d at %s, announcing on gossip (Ctrl-C to stop)\n",
		len(es), nrn.UID, netuid, strings.Join(n.FullAddrs(), " "))
	<-cmd.Context().Done()
	return nil
}
