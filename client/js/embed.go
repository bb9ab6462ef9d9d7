// Package js holds streamd's browser client, streamd.js (a dependency-free
// ES module), and its TypeScript definitions, streamd.d.ts, for streamd to
// serve at /client.js and /client.d.ts. See streamd.js for its semantics.
package js

import (
	_ "embed"
	"net/http"
	"strings"
)

// Source is streamd.js.
//
//go:embed streamd.js
var Source []byte

// Types is streamd.d.ts.
//
//go:embed streamd.d.ts
var Types []byte

// Handler serves Source at any path ending in .js and Types at any path
// ending in .d.ts (mount it at /client.js and /client.d.ts). Browsers may
// load it from any origin.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ctype := Source, "text/javascript; charset=utf-8"
		if strings.HasSuffix(r.URL.Path, ".d.ts") {
			body, ctype = Types, "application/typescript; charset=utf-8"
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(body)
	})
}
