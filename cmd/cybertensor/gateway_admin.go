package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cybertensor/cybertensor/gateway/metering"
)

// The gateway's admin address serves the usage ledger's reads while the
// gateway holds the ledger. What a reader needs to find it lives next to
// the ledger: the token (admin.token) and where it is served (admin.json),
// both 0600, both written at start and removed at a clean exit.
const (
	// defaultGatewayAdmin is the admin address: loopback only, on a port
	// the system picks (admin.json records it), so gateways of several
	// homes on one machine never collide and "gateway usage" finds it.
	defaultGatewayAdmin = "127.0.0.1:0"
	// adminTokenPrefix starts admin tokens, so one is never mistaken for
	// an API key ("ct-").
	adminTokenPrefix = "cta-"
	// maxAdminFile bounds what is read of admin.json and admin.token.
	maxAdminFile = 4 << 10
	// adminReadTimeout bounds one admin request, headers to answer.
	adminReadTimeout = 10 * time.Second
)

func gatewayAdminInfoFile(ledger string) string {
	return filepath.Join(filepath.Dir(ledger), "admin.json")
}
func gatewayAdminTokenFile(ledger string) string {
	return filepath.Join(filepath.Dir(ledger), "admin.token")
}

// gatewayAdminInfo is admin.json: where a running gateway serves its
// ledger's reads.
type gatewayAdminInfo struct {
	URL       string `json:"url"`
	TokenFile string `json:"token_file"`
	Ledger    string `json:"ledger"`
	PID       int    `json:"pid"`
}

// checkAdminAddr refuses an admin address that is not a loopback IP:
// the token would cross the network in clear text (HTTP), and anyone on
// it could try tokens. Remote operators reach it through an SSH tunnel.
// "" and "off" turn the admin address off.
func checkAdminAddr(s string) error {
	if s == "" || s == "off" {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("--admin %q: want a loopback IP:PORT such as %s: %w", s, defaultGatewayAdmin, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--admin %q: the admin address must be a loopback IP (127.0.0.1, ::1), never one others reach: it is plain HTTP; reach it from elsewhere through an SSH tunnel (ssh -L)", s)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("--admin %q: port: %w", s, err)
	}
	return nil
}

// writePrivateFile replaces path with data, mode 0600: a temporary file
// in the same directory, fsynced, renamed over it.
func writePrivateFile(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// readPrivateFile reads a small file that must not be readable by others.
func readPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %v): refused; a gateway writes it 0600", path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxAdminFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAdminFile {
		return nil, fmt.Errorf("%s: more than %d bytes", path, maxAdminFile)
	}
	return b, nil
}

// gatewayAdmin is a running admin server.
type gatewayAdmin struct {
	url  string
	info string // admin.json
	tok  string // admin.token
	srv  *http.Server
	done chan struct{}
}

// startGatewayAdmin serves the ledger's reads on addr with a fresh
// token, and writes admin.token and admin.json next to the ledger file.
// Close stops it and removes both.
// hcfg sets the usage handler's paging (its Token, Ledger and Logger are
// set here).
func startGatewayAdmin(addr string, ledger *metering.Ledger, ledgerFile string, hcfg metering.UsageHandlerConfig, log *slog.Logger) (*gatewayAdmin, error) {
	secret := make([]byte, 32)
	rand.Read(secret)
	token := adminTokenPrefix + base64.RawURLEncoding.EncodeToString(secret)
	hcfg.Token, hcfg.Ledger, hcfg.Logger = token, ledgerFile, log
	h, err := metering.NewUsageHandler(ledger, hcfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin address %s: %w", addr, err)
	}
	ga := &gatewayAdmin{
		url: "http://" + ln.Addr().String(), info: gatewayAdminInfoFile(ledgerFile), tok: gatewayAdminTokenFile(ledgerFile),
		done: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.Handle("/usage", h)
	ga.srv = &http.Server{
		Handler: mux, ReadHeaderTimeout: adminReadTimeout, ReadTimeout: adminReadTimeout,
		IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	tokenFile, err := filepath.Abs(ga.tok)
	if err == nil {
		err = writePrivateFile(ga.tok, []byte(token+"\n"))
	}
	var info []byte
	if err == nil {
		ledgerAbs, _ := filepath.Abs(ledgerFile)
		info, err = json.MarshalIndent(gatewayAdminInfo{URL: ga.url, TokenFile: tokenFile, Ledger: ledgerAbs, PID: os.Getpid()}, "", "  ")
	}
	if err == nil {
		err = writePrivateFile(ga.info, append(info, '\n'))
	}
	if err != nil {
		ln.Close()
		os.Remove(ga.tok)
		return nil, fmt.Errorf("writing the admin token and address next to %s: %w", ledgerFile, err)
	}
	go func() {
		defer close(ga.done)
		if err := ga.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("admin server stopped", "err", err)
		}
	}()
	return ga, nil
}

// Close stops the admin server and removes admin.json and admin.token
// (if they are still this process's).
func (ga *gatewayAdmin) Close() {
	ga.srv.Close()
	<-ga.done
	if b, err := os.ReadFile(ga.info); err == nil {
		var info gatewayAdminInfo
		if json.Unmarshal(b, &info) == nil && info.PID == os.Getpid() && info.URL == ga.url {
			os.Remove(ga.info)
			os.Remove(ga.tok)
		}
	}
}

// removeStaleGatewayAdmin removes the admin files next to ledgerFile,
// which a gateway killed before its clean exit left; only the holder of
// the ledger calls it.
func removeStaleGatewayAdmin(ledgerFile string) {
	os.Remove(gatewayAdminInfoFile(ledgerFile))
	os.Remove(gatewayAdminTokenFile(ledgerFile))
}

// readGatewayAdminInfo reads the admin.json next to ledgerFile.
func readGatewayAdminInfo(ledgerFile string) (gatewayAdminInfo, error) {
	var info gatewayAdminInfo
	b, err := readPrivateFile(gatewayAdminInfoFile(ledgerFile))
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("%s: %w", gatewayAdminInfoFile(ledgerFile), err)
	}
	if err := checkAdminURL(info.URL); err != nil {
		return info, fmt.Errorf("%s: %w", gatewayAdminInfoFile(ledgerFile), err)
	}
	return info, nil
}

// checkAdminURL accepts http://HOST:PORT with nothing else.
func checkAdminURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("admin URL %q: want http://HOST:PORT, as the gateway prints it", s)
	}
	return nil
}

// usageSource is what gateway usage reads: the ledger itself
// (ledgerUsage) or a running gateway's admin address (liveUsage).
type usageSource interface {
	// summary sums the entries q selects, pinned to the ledger as it is
	// now: asOf is the Query.AsOf that lists the same entries (0: the
	// ledger is empty). ledger names the ledger read ("" if not said).
	summary(ctx context.Context, q metering.Query) (sum metering.Summary, asOf uint64, ledger string, err error)
	// page returns the entries q (pinned: q.AsOf set) selects from
	// cursor on, at most a page, and the next page's cursor (zero after
	// the last).
	page(ctx context.Context, q metering.Query, cursor metering.Cursor) ([]metering.Entry, metering.Cursor, error)
}

// ledgerUsage reads an open ledger, pageEntries entries a page.
type ledgerUsage struct {
	l           *metering.Ledger
	pageEntries int
}

func (s ledgerUsage) summary(_ context.Context, q metering.Query) (metering.Summary, uint64, string, error) {
	asOf, err := s.l.LastSeq()
	if err != nil {
		return metering.Summary{}, 0, "", err
	}
	q.AsOf = asOf
	if asOf == 0 {
		return metering.NewSummarizer().Summary(), 0, "", nil
	}
	sum, err := s.l.Summarize(q)
	return sum, asOf, "", err
}

func (s ledgerUsage) page(_ context.Context, q metering.Query, cursor metering.Cursor) ([]metering.Entry, metering.Cursor, error) {
	var out []metering.Entry
	next, err := s.l.ScanFrom(q, cursor, func(e metering.Entry) bool {
		if len(out) == s.pageEntries {
			return false
		}
		out = append(out, e)
		return true
	})
	return out, next, err
}

// liveUsage asks a running gateway's admin address, with the token in
// tokenFile.
type liveUsage struct {
	url, tokenFile string
}

func (s liveUsage) summary(ctx context.Context, q metering.Query) (metering.Summary, uint64, string, error) {
	a, err := s.get(ctx, metering.UsageQuery{Query: q})
	if err != nil {
		return metering.Summary{}, 0, "", err
	}
	if a.Summary == nil {
		return metering.Summary{}, 0, "", fmt.Errorf("the gateway's admin address %s answered no summary", s.url)
	}
	return *a.Summary, a.AsOf, a.Ledger, nil
}

func (s liveUsage) page(ctx context.Context, q metering.Query, cursor metering.Cursor) ([]metering.Entry, metering.Cursor, error) {
	a, err := s.get(ctx, metering.UsageQuery{Query: q, Entries: true, Cursor: cursor})
	if err != nil {
		return nil, metering.Cursor{}, err
	}
	if a.AsOf != q.AsOf {
		return nil, metering.Cursor{}, fmt.Errorf("the gateway's admin address %s answered a page as of entry %d, asked %d", s.url, a.AsOf, q.AsOf)
	}
	return a.Entries, a.Next, nil
}

// get asks the admin address for q: one request, its answer bounded by
// metering.MaxUsageAnswer.
func (s liveUsage) get(ctx context.Context, q metering.UsageQuery) (metering.UsageAnswer, error) {
	if err := checkAdminURL(s.url); err != nil {
		return metering.UsageAnswer{}, err
	}
	tok, err := readPrivateFile(s.tokenFile)
	if err != nil {
		return metering.UsageAnswer{}, fmt.Errorf("reading the admin token: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	u := strings.TrimSuffix(s.url, "/") + "/usage?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return metering.UsageAnswer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	tr := &http.Transport{Proxy: nil, MaxResponseHeaderBytes: 64 << 10}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return metering.UsageAnswer{}, fmt.Errorf("asking the gateway's admin address %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return metering.UsageAnswer{}, fmt.Errorf("the gateway's admin address %s answered %s: %s", s.url, resp.Status, e.Error)
	}
	a, err := metering.DecodeUsageAnswer(resp.Body)
	if err != nil {
		return metering.UsageAnswer{}, fmt.Errorf("the gateway's admin address %s: %w", s.url, err)
	}
	return a, nil
}

// listUsage calls fn with each entry q selects, pinned at asOf (the
// summary's), page by page: memory holds one page. It checks what each
// page holds against the query, the pin and the last cursor, and that the
// listing has exactly the total entries the summary counted.
func listUsage(ctx context.Context, src usageSource, q metering.Query, asOf uint64, total int64, fn func(metering.Entry) error) error {
	if asOf == 0 { // an empty ledger
		if total != 0 {
			return fmt.Errorf("a summary of %d requests in an empty ledger", total)
		}
		return nil
	}
	q.AsOf = asOf
	var cursor, last metering.Cursor // the page's, the last entry's
	var n int64
	for {
		entries, next, err := src.page(ctx, q, cursor)
		if err != nil {
			return err
		}
		for _, e := range entries {
			c := metering.CursorOf(e)
			switch {
			case bytes.Compare(c[:], cursor[:]) < 0 || bytes.Compare(c[:], last[:]) <= 0:
				return fmt.Errorf("entry %d listed out of order (before the page's cursor or again)", e.Seq)
			case e.Seq > asOf, q.KeyID != "" && e.KeyID != q.KeyID,
				!q.From.IsZero() && e.Time.Before(q.From), !q.To.IsZero() && !e.Time.Before(q.To):
				return fmt.Errorf("entry %d listed is not one the query selects", e.Seq)
			}
			if n++; n > total {
				return fmt.Errorf("more entries listed than the %d the summary counts", total)
			}
			last = c
			if err := fn(e); err != nil {
				return err
			}
		}
		if next.IsZero() {
			break
		}
		if bytes.Compare(next[:], cursor[:]) <= 0 || bytes.Compare(next[:], last[:]) <= 0 {
			return fmt.Errorf("a page's next cursor %s does not move past %s", next, max(cursor.String(), last.String()))
		}
		cursor = next
	}
	if n != total {
		return fmt.Errorf("%d entries listed, but the summary counts %d", n, total)
	}
	return nil
}

// serveMetersAdmin starts the admin address addr ("" or "off": none)
// serving the reads of meters' ledger, once what a killed gateway left
// beside the ledger is removed (this gateway holds it now), and says on
// out where. It returns nil when there is none to serve.
func (a *app) serveMetersAdmin(out io.Writer, addr string, meters gatewayMeters) (*gatewayAdmin, error) {
	if meters.ledgerFile != "" {
		removeStaleGatewayAdmin(meters.ledgerFile)
	}
	if addr == "" || addr == "off" || meters.ledger == nil {
		return nil, nil
	}
	ga, err := startGatewayAdmin(addr, meters.ledger, meters.ledgerFile, metering.DefaultUsageHandlerConfig(), a.log)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "usage readable while running at %s/usage (token in %s; \"cybertensor gateway usage\" finds both)\n", ga.url, ga.tok)
	return ga, nil
}
