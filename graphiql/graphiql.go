package graphiql

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed assets
var embedded embed.FS

// assetsDir is the directory of the embedded files, both in the embed.FS and
// in the URL under the handler's prefix.
const assetsDir = "assets"

// The files the page loads, in order (see web/graphiql/build.sh).
var (
	pageStyles  = []string{"graphiql.min.css", "berth.css"}
	pageScripts = []string{"react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "init.js"}
)

// assetCacheControl is sent with every asset: asset URLs on the page carry a
// hash of the file's content (?v=...), so a new build gets new URLs.
const assetCacheControl = "public, max-age=31536000, immutable"

var contentTypes = map[string]string{
	".css":   "text/css; charset=utf-8",
	".html":  "text/html; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".json":  "application/json",
	".map":   "application/json",
	".md":    "text/plain; charset=utf-8",
	".png":   "image/png",
	".svg":   "image/svg+xml",
	".txt":   "text/plain; charset=utf-8",
	".woff":  "font/woff",
	".woff2": "font/woff2",
}

// contentType returns the Content-Type of the asset called name.
func contentType(name string) string {
	ext := path.Ext(name)
	if ct, ok := contentTypes[ext]; ok {
		return ct
	}
	if ext == "" {
		return "text/plain; charset=utf-8" // LICENSE, NOTICE, ...
	}
	if ct := mime.TypeByExtension(ext); ct != "" {
		return ct
	}
	return "application/octet-stream"
}

// asset is one embedded file.
type asset struct {
	body        []byte
	contentType string
	hash        string // hex SHA-256 of body
	// gzipped returns body compressed with gzip, or nil when that does not
	// pay off; computed on first use.
	gzipped func() []byte
}

// version is the short content hash put in the asset's URL.
func (a *asset) version() string { return a.hash[:12] }

func newAsset(name string, body []byte) *asset {
	sum := sha256.Sum256(body)
	a := &asset{body: body, contentType: contentType(name), hash: hex.EncodeToString(sum[:])}
	compressible := strings.HasPrefix(a.contentType, "text/") ||
		strings.HasPrefix(a.contentType, "application/json") ||
		strings.HasPrefix(a.contentType, "image/svg")
	a.gzipped = sync.OnceValue(func() []byte {
		if !compressible || len(body) < 1024 {
			return nil
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // valid level: no error
		_, _ = zw.Write(body)                                    // writes to a bytes.Buffer do not fail
		if err := zw.Close(); err != nil || buf.Len() >= len(body)*9/10 {
			return nil
		}
		return buf.Bytes()
	})
	return a
}

// assets maps the name of every embedded file, relative to assets/ (for
// example "init.js" or "licenses/INDEX.txt"), to its content.
var assets = sync.OnceValue(func() map[string]*asset {
	m := make(map[string]*asset)
	err := fs.WalkDir(embedded, assetsDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, assetsDir+"/")
		m[name] = newAsset(name, body)
		return nil
	})
	if err != nil {
		panic("graphiql: reading embedded assets: " + err.Error())
	}
	for _, name := range append(append([]string{}, pageStyles...), pageScripts...) {
		if m[name] == nil {
			panic("graphiql: embedded asset " + name + " is missing; run: bash web/graphiql/build.sh")
		}
	}
	return m
})

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>berth GraphiQL</title>
<link rel="icon" href="data:,">
{{range .Styles}}<link rel="stylesheet" href="{{.}}">
{{end -}}
</head>
<body>
<div id="graphiql" data-endpoint="{{.Endpoint}}"><p class="berth-loading">Loading GraphiQL…</p></div>
<noscript><p class="berth-loading">GraphiQL needs JavaScript.</p></noscript>
{{range .Scripts}}<script src="{{.}}"></script>
{{end -}}
</body>
</html>
`))

// normalizePrefix makes prefix an absolute path ending in "/".
func normalizePrefix(prefix string) string {
	if !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return prefix
}

// assetURL is the URL of the named asset under prefix, versioned by content.
func assetURL(prefix, name string) string {
	return prefix + assetsDir + "/" + name + "?v=" + assets()[name].version()
}

// Page returns the HTML page bytes (for serving at /graphql itself on a browser GET).
//
// The page loads its scripts and styles from prefix+"assets/..." (so Handler
// must be mounted at prefix) and sends GraphQL requests to endpoint. A prefix
// without a trailing slash gets one.
func Page(prefix, endpoint string) []byte {
	prefix = normalizePrefix(prefix)
	data := struct {
		Endpoint        string
		Styles, Scripts []string
	}{Endpoint: endpoint}
	for _, name := range pageStyles {
		data.Styles = append(data.Styles, assetURL(prefix, name))
	}
	for _, name := range pageScripts {
		data.Scripts = append(data.Scripts, assetURL(prefix, name))
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, data); err != nil {
		panic("graphiql: rendering page: " + err.Error()) // the template and its data are fixed
	}
	return buf.Bytes()
}

// contentSecurityPolicy is the policy sent with the page: scripts, styles and
// fonts only from this origin (plus data: fonts and images, which
// graphiql.min.css inlines; inline styles, which GraphiQL's components set),
// and requests only to this origin and endpoint's.
func contentSecurityPolicy(endpoint string) string {
	connect := "'self'"
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		connect += " " + u.Scheme + "://" + u.Host
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self' 'unsafe-inline'",
		"img-src 'self' data:",
		"font-src 'self' data:",
		"connect-src " + connect,
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

// Handler serves the GraphiQL page for the GraphQL endpoint at endpoint (e.g. "/graphql") and its static assets.
// Mount it at prefix (e.g. "/graphiql/"): the page's <script>/<link> tags reference prefix+"assets/..." files.
// GET prefix → the HTML page (also usable as the response to a browser GET on /graphql), GET prefix+"assets/<file>" → the file
// with correct Content-Type and a long Cache-Control (immutable); unknown files → 404.
//
// The handler expects the full request path (do not wrap it in
// http.StripPrefix). Besides prefix it also serves the page for a GET on
// endpoint's path and on prefix without its trailing slash, so a browser GET
// on the GraphQL endpoint can be routed to it. Methods other than GET and
// HEAD get 405.
func Handler(prefix, endpoint string) http.Handler {
	prefix = normalizePrefix(prefix)
	page := Page(prefix, endpoint)
	sum := sha256.Sum256(page)
	endpointPath := endpoint
	if u, err := url.Parse(endpoint); err == nil {
		endpointPath = u.Path
	}
	return &handler{
		prefix:       prefix,
		endpointPath: endpointPath,
		page:         page,
		pageETag:     `"` + hex.EncodeToString(sum[:8]) + `"`,
		csp:          contentSecurityPolicy(endpoint),
	}
}

type handler struct {
	prefix       string
	endpointPath string
	page         []byte
	pageETag     string
	csp          string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	switch {
	case p == h.prefix || p+"/" == h.prefix || (h.endpointPath != "" && p == h.endpointPath):
		h.servePage(w, r)
	case strings.HasPrefix(p, h.prefix+assetsDir+"/"):
		serveAsset(w, r, strings.TrimPrefix(p, h.prefix+assetsDir+"/"))
	default:
		http.NotFound(w, r)
	}
}

func (h *handler) servePage(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", h.pageETag)
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(h.page))
}

func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	a := assets()[name]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("Cache-Control", assetCacheControl)
	hd.Set("X-Content-Type-Options", "nosniff")
	body, etag := a.body, `"`+a.hash[:32]+`"`
	if gz := a.gzipped(); gz != nil {
		hd.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			hd.Set("Content-Encoding", "gzip")
			body, etag = gz, `"`+a.hash[:32]+`-gzip"`
		}
	}
	hd.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether an Accept-Encoding header value allows gzip.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" {
			continue
		}
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && q <= 0 {
				return false
			}
		}
		return true
	}
	return false
}
