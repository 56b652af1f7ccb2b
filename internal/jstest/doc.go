// Package jstest holds colugo's tests that run JavaScript: the
// @foxglove/ws-protocol client against `colugo web` (protocol
// conformance) and the built-in web page in headless Chromium. Its
// Node.js packages are in package.json; `npm ci` in this directory
// installs them (.ci/run does). Without them, or without node and
// chromium, the tests skip, unless COLUGO_REQUIRE_JS=1 (set by .ci/run)
// makes that a failure.
//
// Every child process gets COLUGO_DISCOVERY=local and its own
// XDG_RUNTIME_DIR, so it finds only the test's nodes and never sends
// mDNS.
package jstest
