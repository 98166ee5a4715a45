// Package console tests the operator console in headless Chromium (driven
// by chromedp) against a sandbox cluster, and the CLI during a failover.
// Its tests carry the multiprocess build tag and need SHOAL_BIN and
// /usr/bin/chromium (Debian's chromium package; .ci/run installs it).
package console
