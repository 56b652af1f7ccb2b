// Package webui is colugo's built-in web page: a live view of a colugo
// network (nodes, topics, services, latest messages, rates) and a form
// to call services, in plain HTML, JavaScript and CSS embedded in the
// binary. The page is a client of the Foxglove WebSocket gateway
// (gateway/foxglove) served at the same address: `colugo web` serves
// both.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the page at / and its files beside it. It holds no
// secret: a gateway token is given to the page in its URL (?token=) and
// used only for the page's WebSocket.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		// The page runs only its own scripts and talks only to its own
		// origin's WebSocket.
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		files.ServeHTTP(w, r)
	})
}
