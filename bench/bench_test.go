package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// berthBin is a berth binary built for the embedded runs.
var berthBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-bench-test")
	if err != nil {
		panic(err)
	}
	berthBin = filepath.Join(dir, "berth")
	build := exec.Command("go", "build", "-o", berthBin, "github.com/berthhq/berth/cmd/berth")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building berth:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func msd(v ...float64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, f := range v {
		out[i] = time.Duration(f * float64(time.Millisecond))
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", msd(7), 99, 7 * time.Millisecond},
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p95 of 1..100", hundred, 95, 95 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"p0 is the min", hundred, 0, time.Millisecond},
		{"nearest rank rounds up", msd(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"nearest rank, p51 of 4", msd(1, 2, 3, 4), 51, 3 * time.Millisecond},
		{"p99 of 10 is the max", msd(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
	}
	for _, c := range cases {
		if got := Percentile(c.sorted, c.p); got != c.want {
			t.Errorf("%s: Percentile(p%v) = %v, want %v", c.name, c.p, got, c.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	in := msd(5, 1, 3, 2, 4)
	s := Summarize(in)
	want := Summary{Count: 5, Mean: 3, P50: 3, P95: 5, P99: 5, Max: 5}
	if s != want {
		t.Fatalf("Summarize = %+v, want %+v", s, want)
	}
	if in[0] != 5*time.Millisecond {
		t.Fatal("Summarize sorted its input")
	}
	if (Summarize(nil) != Summary{}) {
		t.Fatal("Summarize(nil) is not zero")
	}
}

func TestPromSample(t *testing.T) {
	text := []byte(`# HELP go_goroutines Number of goroutines.
go_goroutines_extra 99
go_goroutines 42
berth_saga_executions{status="DEAD"} 3
berth_saga_executions{status="RUNNING"} 7
process_resident_memory_bytes 4.2e+07
`)
	for metric, want := range map[string]float64{"go_goroutines": 42, `berth_saga_executions{status="RUNNING"}`: 7,
		`berth_saga_executions{status="DEAD"}`: 3, "process_resident_memory_bytes": 4.2e7} {
		if got, ok := promSample(text, metric); !ok || got != want {
			t.Errorf("promSample(%s) = %v, %v; want %v", metric, got, ok, want)
		}
	}
	if _, ok := promSample(text, "missing"); ok {
		t.Error("found a missing metric")
	}
}

func sampleReport() *Report {
	r := newReport(Config{Scenario: FlashSale, Users: 4, Seats: 20, Synchronous: "FULL", InFlight: 1})
	r.Database, r.Target = "sqlite", "http://127.0.0.1:1"
	r.ConfirmedPerSec, r.AcceptedPerSec, r.P99ConfirmMs = 123.4, 150, 80
	for i := range 12 {
		r.Series = append(r.Series, Second{T: i, Accepted: 10 + i, Confirmed: 9 + i, Cancelled: i % 2, P50ConfirmMs: 20, P99ConfirmMs: 75.5, RSSMB: 40})
	}
	return r
}

// wellFormed parses b as XML to the end and returns the root element name.
func wellFormed(t *testing.T, b []byte) string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return root
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v\n%s", err, b)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
}

func TestSVGIsWellFormed(t *testing.T) {
	for name, r := range map[string]*Report{
		"a run":       sampleReport(),
		"no seconds":  func() *Report { r := sampleReport(); r.Series = nil; return r }(),
		"one second":  func() *Report { r := sampleReport(); r.Series = r.Series[:1]; return r }(),
		"long run":    func() *Report { r := sampleReport(); r.Series = make([]Second, 700); return r }(),
		"markup text": func() *Report { r := sampleReport(); r.Machine.CPU = `<AMD & "Intel">`; return r }(),
	} {
		var b bytes.Buffer
		if err := r.WriteSVG(&b); err != nil {
			t.Fatal(err)
		}
		if root := wellFormed(t, b.Bytes()); root != "svg" {
			t.Errorf("%s: root element %q, want svg", name, root)
		}
	}
}

// summaryKeys are the keys issue 5 asks every JSON report to have.
var summaryKeys = []string{"accepted_per_sec", "confirmed_per_sec", "p50_confirm_ms", "p99_confirm_ms", "oversold",
	"raw_tx_per_sec", "ratio", "rss_mb"}

func checkJSONKeys(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("the JSON report does not parse: %v", err)
	}
	for _, k := range summaryKeys {
		if _, ok := m[k].(float64); !ok {
			t.Errorf("the JSON report has no number %q", k)
		}
	}
	return m
}

func TestJSONKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	if err := sampleReport().WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	checkJSONKeys(t, path)
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Start: ChildStarter("berth")}
	if err := c.defaults(); err != nil {
		t.Fatal(err)
	}
	if c.Scenario != FlashSale || c.Users != 64 || c.Seats != 5000 || c.Flights != 64 || c.Synchronous != "FULL" || c.InFlight != 1 || c.Wait != WaitLong {
		t.Fatalf("defaults: %+v", c)
	}
	for _, bad := range []Config{
		{Scenario: "stampede", Start: c.Start},
		{},                     // neither target nor starter
		{Target: "http://x:1"}, // a target without its data directory
		{Start: c.Start, Seats: 100001},
		{Start: c.Start, Wait: "sometimes"},
	} {
		if err := bad.defaults(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// TestEmbeddedFlashSale runs a tiny flash sale against a real berth.
func TestEmbeddedFlashSale(t *testing.T) {
	var logs bytes.Buffer
	cfg := Config{Scenario: FlashSale, Start: ChildStarter(berthBin), Users: 4, Seats: 20, Calibrate: 200 * time.Millisecond, Log: &logs}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	t.Log("\n" + text.String())
	if rep.Oversold != 0 {
		t.Errorf("%d seats oversold", rep.Oversold)
	}
	if rep.Confirmed != 20 {
		t.Errorf("%d bookings confirmed, want all 20 seats", rep.Confirmed)
	}
	if !rep.Invariants.OK || rep.Invariants.DB == nil {
		t.Errorf("invariants: %+v", rep.Invariants)
	}
	if rep.Accepted < rep.Confirmed || rep.Accepted != rep.Confirmed+rep.Cancelled {
		t.Errorf("accepted %d, confirmed %d, cancelled %d", rep.Accepted, rep.Confirmed, rep.Cancelled)
	}
	if rep.RawTxPerSec <= 0 || rep.Ratio <= 0 || rep.RSSMB <= 0 {
		t.Errorf("raw rate %v, ratio %v, RSS %v", rep.RawTxPerSec, rep.Ratio, rep.RSSMB)
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	m := checkJSONKeys(t, path)
	if m["oversold"].(float64) != 0 {
		t.Errorf("JSON oversold = %v", m["oversold"])
	}
	var svg bytes.Buffer
	if err := rep.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	wellFormed(t, svg.Bytes())
}
