package graphiql

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const (
	testPrefix   = "/graphiql/"
	testEndpoint = "/graphql"
)

// attrURLs returns the values of every src and href attribute in page.
var attrRE = regexp.MustCompile(`(?i)\b(src|href)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))`)

func attrURLs(page string) []string {
	var urls []string
	for _, m := range attrRE.FindAllStringSubmatch(page, -1) {
		urls = append(urls, m[2]+m[3]+m[4])
	}
	return urls
}

// get runs a GET for target through h.
func get(t *testing.T, h http.Handler, target string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func readBody(t *testing.T, res *http.Response) []byte {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pageAssetURLs returns the src/href URLs of the page that are not data: URLs.
func pageAssetURLs(t *testing.T, page string) []string {
	t.Helper()
	var out []string
	for _, u := range attrURLs(page) {
		if !strings.HasPrefix(u, "data:") {
			out = append(out, u)
		}
	}
	return out
}

func TestPageContent(t *testing.T) {
	page := string(Page(testPrefix, testEndpoint))
	for _, want := range []string{
		"<title>berth GraphiQL</title>",
		`data-endpoint="/graphql"`,
		`<link rel="stylesheet" href="/graphiql/assets/graphiql.min.css?v=`,
		`<script src="/graphiql/assets/react.production.min.js?v=`,
		`<script src="/graphiql/assets/react-dom.production.min.js?v=`,
		`<script src="/graphiql/assets/graphiql.min.js?v=`,
		`<script src="/graphiql/assets/init.js?v=`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	// React, then ReactDOM, then GraphiQL (which needs both globals), then init.js.
	order := []string{"react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "init.js"}
	last := -1
	for _, name := range order {
		i := strings.Index(page, "/assets/"+name)
		if i < last {
			t.Errorf("%s is loaded out of order", name)
		}
		last = i
	}
	// No inline script: every <script> has a src and an empty body.
	if n, m := strings.Count(page, "<script"), strings.Count(page, "<script src="); n != m || strings.Contains(page, "<script src=\"\"") {
		t.Errorf("page has inline scripts:\n%s", page)
	}
	if regexp.MustCompile(`<script[^>]*>[^<]`).MatchString(page) {
		t.Errorf("a <script> element has inline content:\n%s", page)
	}
}

func TestPageNormalizesPrefixAndEscapesEndpoint(t *testing.T) {
	if a, b := Page("/graphiql", testEndpoint), Page(testPrefix, testEndpoint); !bytes.Equal(a, b) {
		t.Errorf("Page(%q) differs from Page(%q)", "/graphiql", testPrefix)
	}
	page := string(Page("/tools/gql/", "https://api.example.test/graphql"))
	if !strings.Contains(page, `data-endpoint="https://api.example.test/graphql"`) {
		t.Errorf("absolute endpoint not on the page:\n%s", page)
	}
	if !strings.Contains(page, `src="/tools/gql/assets/init.js?v=`) {
		t.Errorf("assets not under the prefix:\n%s", page)
	}
	evil := string(Page(testPrefix, `/graphql"><script>alert(1)</script>`))
	if strings.Contains(evil, "<script>alert") {
		t.Errorf("endpoint is not escaped:\n%s", evil)
	}
}

func TestHandlerServesPage(t *testing.T) {
	h := Handler(testPrefix, testEndpoint)
	want := Page(testPrefix, testEndpoint)
	for _, target := range []string{"/graphiql/", "/graphiql", "/graphql", "/graphql?x=1"} {
		res := get(t, h, target)
		body := readBody(t, res)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", target, res.StatusCode)
			continue
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", target, ct)
		}
		if !bytes.Equal(body, want) {
			t.Errorf("GET %s: body is not Page(%q, %q)", target, testPrefix, testEndpoint)
		}
		csp := res.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("GET %s: Content-Security-Policy %q lacks %q", target, csp, d)
			}
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", target, cc)
		}
	}

	// HEAD: headers, no body.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, testPrefix, nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != strconv.Itoa(len(want)) {
		t.Errorf("HEAD %s: status %d, %d body bytes, Content-Length %q", testPrefix, rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}

	// Other methods are not served (POST /graphql belongs to the GraphQL server).
	for _, target := range []string{testPrefix, testEndpoint, testPrefix + "assets/init.js"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, target, strings.NewReader("{}")))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("POST %s: status %d, Allow %q", target, rec.Code, rec.Header().Get("Allow"))
		}
	}
}

func TestContentSecurityPolicyAllowsAbsoluteEndpoint(t *testing.T) {
	res := get(t, Handler(testPrefix, "https://api.example.test:8443/graphql"), testPrefix)
	readBody(t, res)
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "connect-src 'self' https://api.example.test:8443") {
		t.Errorf("Content-Security-Policy %q does not allow the endpoint's origin", csp)
	}
}

func TestPageAssetsResolve(t *testing.T) {
	srv := httptest.NewServer(Handler(testPrefix, testEndpoint))
	defer srv.Close()

	res, err := srv.Client().Get(srv.URL + testPrefix)
	if err != nil {
		t.Fatal(err)
	}
	page := string(readBody(t, res))
	urls := pageAssetURLs(t, page)
	if len(urls) != len(pageStyles)+len(pageScripts) {
		t.Fatalf("page references %d assets, want %d: %v", len(urls), len(pageStyles)+len(pageScripts), urls)
	}
	wantType := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("bad URL %q: %v", raw, err)
			continue
		}
		if u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, testPrefix+"assets/") {
			t.Errorf("asset URL %q is not a local path under %sassets/", raw, testPrefix)
			continue
		}
		res, err := srv.Client().Get(srv.URL + raw)
		if err != nil {
			t.Errorf("GET %s: %v", raw, err)
			continue
		}
		body := readBody(t, res)
		ext := u.Path[strings.LastIndex(u.Path, "."):]
		switch {
		case res.StatusCode != http.StatusOK:
			t.Errorf("GET %s: status %d", raw, res.StatusCode)
		case len(body) == 0:
			t.Errorf("GET %s: empty body", raw)
		case res.Header.Get("Content-Type") != wantType[ext]:
			t.Errorf("GET %s: Content-Type %q, want %q", raw, res.Header.Get("Content-Type"), wantType[ext])
		case res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable":
			t.Errorf("GET %s: Cache-Control %q", raw, res.Header.Get("Cache-Control"))
		case !bytes.Equal(body, assets()[strings.TrimPrefix(u.Path, testPrefix+"assets/")].body):
			t.Errorf("GET %s: body differs from the embedded file", raw)
		}
	}
}

func TestNoRemoteResources(t *testing.T) {
	page := string(Page(testPrefix, testEndpoint))
	for _, u := range attrURLs(page) {
		lu := strings.ToLower(u)
		if strings.HasPrefix(lu, "http://") || strings.HasPrefix(lu, "https://") || strings.HasPrefix(lu, "//") {
			t.Errorf("page loads a remote resource: %s", u)
		}
	}
	if regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`).MatchString(page) {
		t.Errorf("page references a remote URL:\n%s", page)
	}
	// The style sheets must not pull in anything remote either (fonts and
	// images are inlined as data: URIs).
	urlRE := regexp.MustCompile(`(?i)url\(\s*['"]?([^'")\s]*)`)
	for _, name := range pageStyles {
		css := string(assets()[name].body)
		if strings.Contains(css, "@import") {
			t.Errorf("%s uses @import", name)
		}
		for _, m := range urlRE.FindAllStringSubmatch(css, -1) {
			if ref := strings.ToLower(m[1]); !strings.HasPrefix(ref, "data:") && !strings.HasPrefix(ref, "#") {
				t.Errorf("%s references url(%s)", name, m[1])
			}
		}
	}
}

func TestUnknownAssets(t *testing.T) {
	h := Handler(testPrefix, testEndpoint)
	for _, target := range []string{
		testPrefix + "assets/nope.js",
		testPrefix + "assets/",
		testPrefix + "assets/licenses",
		testPrefix + "assets/licenses/",
		testPrefix + "assets/../graphiql.go",
		testPrefix + "assets/graphiql.min.js.map",
		testPrefix + "index.html",
		testPrefix + "init.js",
		"/elsewhere",
	} {
		res := get(t, h, target)
		readBody(t, res)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", target, res.StatusCode)
		}
		if cc := res.Header.Get("Cache-Control"); strings.Contains(cc, "immutable") {
			t.Errorf("GET %s: a 404 must not be cached as immutable (Cache-Control %q)", target, cc)
		}
	}
}

func TestAssetConditionalAndGzip(t *testing.T) {
	h := Handler(testPrefix, testEndpoint)
	target := testPrefix + "assets/graphiql.min.js"
	orig := assets()["graphiql.min.js"].body

	res := get(t, h, target)
	if body := readBody(t, res); !bytes.Equal(body, orig) || res.Header.Get("Content-Encoding") != "" {
		t.Fatalf("plain GET: %d bytes, Content-Encoding %q", len(body), res.Header.Get("Content-Encoding"))
	}
	etag := res.Header.Get("ETag")
	if etag == "" || !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
		t.Errorf("ETag %q, Vary %q", etag, res.Header.Get("Vary"))
	}
	res = get(t, h, target, "If-None-Match", etag)
	readBody(t, res)
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", res.StatusCode)
	}

	res = get(t, h, target, "Accept-Encoding", "br, gzip;q=0.8")
	gz := readBody(t, res)
	if res.Header.Get("Content-Encoding") != "gzip" || len(gz) >= len(orig) {
		t.Fatalf("gzip GET: Content-Encoding %q, %d bytes for %d", res.Header.Get("Content-Encoding"), len(gz), len(orig))
	}
	if res.Header.Get("ETag") == etag {
		t.Errorf("gzip and identity responses share ETag %s", etag)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, orig) {
		t.Errorf("gunzipped body differs (err %v)", err)
	}

	res = get(t, h, target, "Accept-Encoding", "gzip;q=0")
	readBody(t, res)
	if res.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 got Content-Encoding %q", res.Header.Get("Content-Encoding"))
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                    false,
		"gzip":                true,
		"GZIP":                true,
		"deflate, gzip":       true,
		"br;q=1.0, gzip;q=.5": true,
		"gzip;q=0":            false,
		"gzip; q=0.000":       false,
		"br":                  false,
		"x-gzip":              true,
		"gzipped":             false,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

func TestInitScript(t *testing.T) {
	js := string(assets()["init.js"].body)
	for _, want := range []string{
		"data-endpoint",
		"GraphiQL.createFetcher",
		"defaultHeaders",
		"isHeadersEditorEnabled: true",
		"enableIncrementalDelivery: false",
		"Authorization: 'Bearer <paste a token from: berth token --sub alice --groups customer>'",
		"query Flights {",
		"listFlights(limit: 10) {",
		"# Welcome to berth. Get a token: go run ./cmd/berth token --sub alice --groups customer",
	} {
		if !strings.Contains(js, want) {
			t.Errorf("init.js lacks %q", want)
		}
	}
	for _, field := range []string{"id", "flightNumber", "departureAirportCode", "arrivalAirportCode", "departureDate", "ticketPrice", "ticketCurrency", "seatCapacity", "nextToken"} {
		if !strings.Contains(js, "'      "+field+"',") && !strings.Contains(js, "'    "+field+"',") {
			t.Errorf("default query lacks field %s", field)
		}
	}
}

func TestLicensesShipped(t *testing.T) {
	h := Handler(testPrefix, testEndpoint)
	for _, name := range []string{"INDEX.txt", "graphiql.txt", "react.txt", "react-dom.txt", "graphql.txt", "codemirror.txt", "fonts.txt"} {
		res := get(t, h, testPrefix+"assets/licenses/"+name)
		body := readBody(t, res)
		if res.StatusCode != http.StatusOK || len(body) == 0 || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("licenses/%s: status %d, %d bytes, Content-Type %q", name, res.StatusCode, len(body), res.Header.Get("Content-Type"))
		}
	}
	index := string(assets()["licenses/INDEX.txt"].body)
	for _, pkg := range []string{"graphiql ", "react ", "react-dom ", "scheduler ", "graphql "} {
		if !strings.Contains(index, "\n"+pkg) {
			t.Errorf("licenses/INDEX.txt does not list %q", strings.TrimSpace(pkg))
		}
	}
}

func TestContentType(t *testing.T) {
	for name, want := range map[string]string{
		"a.js":        "text/javascript; charset=utf-8",
		"a.css":       "text/css; charset=utf-8",
		"l/INDEX.txt": "text/plain; charset=utf-8",
		"LICENSE":     "text/plain; charset=utf-8",
		"f.woff2":     "font/woff2",
	} {
		if got := contentType(name); got != want {
			t.Errorf("contentType(%q) = %q, want %q", name, got, want)
		}
	}
}
