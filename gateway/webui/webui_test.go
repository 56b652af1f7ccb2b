package webui_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/colugo-go/colugo/gateway/webui"
)

func get(t *testing.T, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	webui.Handler().ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

func TestIndex(t *testing.T) {
	w := get(t, http.MethodGet, "/")
	if w.Code != http.StatusOK {
		t.Fatalf("GET /: %d", w.Code)
	}
	h := w.Header()
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q, want text/html", ct)
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-") {
		t.Errorf("CSP %q allows unsafe sources", csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", h.Get("X-Content-Type-Options"))
	}
	if !strings.Contains(w.Body.String(), `src="app.js"`) {
		t.Errorf("index.html does not load app.js:\n%s", w.Body)
	}
}

func TestNotFound(t *testing.T) {
	for _, p := range []string{"/nope", "/static/app.js", "/../webui.go", "/app.js.map"} {
		if w := get(t, http.MethodGet, p); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
}

func TestMethods(t *testing.T) {
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		w := get(t, m, "/")
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s /: %d, want 405", m, w.Code)
		}
		if w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /: Allow %q", m, w.Header().Get("Allow"))
		}
	}
	if w := get(t, http.MethodHead, "/"); w.Code != http.StatusOK {
		t.Errorf("HEAD /: %d", w.Code)
	}
}

var (
	// htmlRef is a file index.html loads.
	htmlRef = regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	// jsImport is a module a script imports.
	jsImport = regexp.MustCompile(`(?m)^import [^'"]*['"](\./[^'"]+)['"]`)
)

// TestReferences checks that every file index.html loads, and every
// module those scripts import, is served with its content type: a
// missing one would break only the page.
func TestReferences(t *testing.T) {
	types := map[string]string{".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
	seen := map[string]bool{}
	var check func(ref, from string)
	check = func(ref, from string) {
		ref = strings.TrimPrefix(ref, "./")
		if seen[ref] {
			return
		}
		seen[ref] = true
		if strings.Contains(ref, ":") || strings.HasPrefix(ref, "/") {
			t.Errorf("%s loads %q: not a file beside the page", from, ref)
			return
		}
		w := get(t, http.MethodGet, "/"+ref)
		if w.Code != http.StatusOK {
			t.Errorf("%s loads %s: GET %d", from, ref, w.Code)
			return
		}
		for ext, want := range types {
			if strings.HasSuffix(ref, ext) && !strings.HasPrefix(w.Header().Get("Content-Type"), want) {
				t.Errorf("%s: Content-Type %q, want %s", ref, w.Header().Get("Content-Type"), want)
			}
		}
		if strings.HasSuffix(ref, ".js") {
			for _, m := range jsImport.FindAllStringSubmatch(w.Body.String(), -1) {
				check(m[1], ref)
			}
		}
	}
	body := get(t, http.MethodGet, "/").Body.String()
	refs := htmlRef.FindAllStringSubmatch(body, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html references %d files, want its script, style and icon", len(refs))
	}
	for _, m := range refs {
		check(m[1], "index.html")
	}
	// Every script is reached from index.html: none is dead weight.
	sub := os.DirFS("static") // what is embedded
	js, _ := fs.Glob(sub, "*.js")
	for _, f := range js {
		if !seen[f] {
			t.Errorf("%s is embedded but nothing loads it", f)
		}
	}
}

// TestNoMarkupFromData guards the page's rule that network data is never
// parsed as HTML.
func TestNoMarkupFromData(t *testing.T) {
	sub := os.DirFS("static") // what is embedded
	js, _ := fs.Glob(sub, "*.js")
	for _, f := range js {
		b, _ := fs.ReadFile(sub, f)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s", f, bad)
			}
		}
	}
}
