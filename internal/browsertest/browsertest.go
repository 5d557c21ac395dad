package browsertest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ExecPath is where the browser is looked for (Debian's chromium package).
const ExecPath = "/usr/bin/chromium"

// Environment variables the tests read.
const (
	RequireEnv    = "CYBERTENSOR_REQUIRE_BROWSER" // "1": fail, do not skip, without a browser
	ScreenshotEnv = "CYBERTENSOR_SCREENSHOT_DIR"  // where SaveScreenshot writes
)

// New starts a headless browser and returns a context for one tab in it;
// pass it to chromedp.Do and chromedp.Run. The browser stops when the test
// ends. New skips the test under -short, and when there is no browser
// unless RequireEnv is "1".
func New(t testing.TB) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a browser")
	}
	if _, err := os.Stat(ExecPath); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("no browser at %s (%v) and %s=1: install it with `apt-get install chromium`", ExecPath, err, RequireEnv)
		}
		t.Skipf("no browser at %s: install it with `apt-get install chromium` to run this test (set %s=1 to make its absence fail)", ExecPath, RequireEnv)
	}
	// The profile directory goes first, so its cleanup runs after the
	// browser's.
	profile := t.TempDir()
	var output syncBuffer
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(ExecPath),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// Without these Chromium stalls on a network with no internet.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1360, 1000),
		chromedp.CombinedOutput(&output),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		// Close the browser gracefully, then make sure it is gone.
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := chromedp.Cancel(cctx); err != nil {
			t.Logf("closing the browser: %v", err)
		}
		cancel()
		cancelTab()
		cancelAlloc()
		if t.Failed() {
			if out := strings.TrimSpace(output.String()); out != "" {
				t.Logf("browser output:\n%s", out)
			}
		}
	})
	return ctx
}

// SaveScreenshot writes png as name (a file name such as "dashboard.png")
// to ScreenshotEnv's directory if set, else to a temporary directory of the
// test, logs where, and returns the path.
func SaveScreenshot(t testing.TB, name string, png []byte) string {
	t.Helper()
	dir := os.Getenv(ScreenshotEnv)
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshot directory: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("saving the screenshot: %v", err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// syncBuffer collects the browser's output, which a goroutine of chromedp
// writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
