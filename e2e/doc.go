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
//   - TestEncodingSwitchAnswerID: a client that switches encodings before
//     an answer gets it in the new encoding with its request id transcoded
//     (the browser test once found the raw JSON id pasted into msgpack).
//
// Each runs against each engine mode (inline and rings). scripts/test-deps.sh
// installs what they need. This package only tests: it exports nothing and
// nothing imports it; it must not reach into the engine's internals, only
// its embedding API and the wire protocol.
package e2e
