// Package browsertest drives a headless Chromium from tests, for the
// dashboard's browser tests.
//
// [New] starts Debian's Chromium (/usr/bin/chromium) with a fresh profile
// and the flags that keep it quiet on a closed network, and stops it when
// the test ends. Without Chromium the test is skipped, unless the
// environment variable CYBERTENSOR_REQUIRE_BROWSER is 1 (as in CI), when it
// fails. [SaveScreenshot] writes a PNG to $CYBERTENSOR_SCREENSHOT_DIR, or to
// the test's temporary directory.
package browsertest
