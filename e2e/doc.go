// Package e2e holds end-to-end tests of the wire protocol v1 (see the
// project's DESIGN.md) spoken by WebSocket clients that nobody in this
// repository wrote, against an embedded engine on a loopback port:
//
//   - TestNodeWS runs node/client.mjs: two clients on Node's `ws` package
//     (one with permessage-deflate, one without) publish JSON text and
//     msgpack binary messages (@msgpack/msgpack) into one room, next to a Go
//     client on github.com/coder/websocket. It skips when `node` is not on
//     PATH and fails when e2e/node/node_modules is missing (`make test-deps`).
//   - TestChromium drives headless Chromium (Debian's /usr/bin/chromium)
//     with chromedp: the browser's own WebSocket, which negotiates
//     permessage-deflate by itself, joins a room and publishes a JSON and a
//     msgpack message (testdata/chromium.html, encoded with the shipped
//     client's codec, client/js), next to a Go client. It skips when Chromium is absent, unless CI is set.
//   - TestEncodingSwitchAnswerID pins down a known engine bug (a request id
//     not transcoded when the client switches encodings before the answer);
//     it runs only with STREAMD_E2E_KNOWN_BUGS=1 until that is fixed.
//
// Each runs against each engine mode (inline and rings). scripts/test-deps.sh
// installs what they need. This package only tests: it exports nothing and
// nothing imports it; it must not reach into the engine's internals, only
// its embedding API and the wire protocol.
package e2e
