package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests build the berth binary and drive it like a user: `berth
// serve` on :0, GraphQL over HTTP, the CLI for tokens and the dead-letter
// queue, and kill -9 for crashes.

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-e2e")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "berth")
	build := exec.Command("go", "build", "-race", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building berth:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	data string
	logs *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var listenRE = regexp.MustCompile(`listening on (http://\S+)`)

// startServer runs `berth serve` on a free port with data in dir.
func startServer(t *testing.T, dir string, args ...string) *server {
	t.Helper()
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dir, "--demo", "--log-level", "warn"}, args...)
	cmd := exec.Command(binPath, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, data: dir, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(s.done) }()
	select {
	case s.url = <-urlc:
	case <-s.done:
		t.Fatalf("berth serve exited: %s", s.logs)
	case <-time.After(60 * time.Second):
		t.Fatalf("berth serve did not start: %s", s.logs)
	}
	t.Cleanup(func() { s.stop() })
	return s
}

// kill ends the server with SIGKILL, as a crash would.
func (s *server) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.kill()
	}
}

// cli runs the berth binary and returns its standard output.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(binPath, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func (s *server) token(sub string, groups ...string) string {
	args := []string{"token", "--data", s.data, "--sub", sub}
	if len(groups) > 0 {
		args = append(args, "--groups", strings.Join(groups, ","))
	}
	return strings.TrimSpace(cli(s.t, args...))
}

type gqlError struct {
	Message    string            `json:"message"`
	Extensions map[string]string `json:"extensions"`
}

type gqlResponse struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []gqlError                 `json:"errors"`
	Status int                        `json:"-"`
}

func (r *gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Extensions["code"]
}

// gql posts a GraphQL request with a bearer token ("" for anonymous).
func (s *server) gql(token, query string, vars map[string]any, headers ...string) *gqlResponse {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("POST /graphql: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r gqlResponse
	if err := json.Unmarshal(b, &r); err != nil {
		s.t.Fatalf("POST /graphql: status %d, body %q", resp.StatusCode, b)
	}
	r.Status = resp.StatusCode
	if resp.StatusCode >= 500 {
		s.t.Fatalf("POST /graphql: status %d: %s", resp.StatusCode, b)
	}
	return &r
}

// must decodes field of a successful response into v.
func (s *server) must(r *gqlResponse, field string, v any) {
	s.t.Helper()
	if len(r.Errors) > 0 {
		s.t.Fatalf("%s: unexpected errors: %+v", field, r.Errors)
	}
	if err := json.Unmarshal(r.Data[field], v); err != nil {
		s.t.Fatalf("%s: %v (%s)", field, err, r.Data[field])
	}
}

type flight struct {
	ID           string `json:"id"`
	FlightNumber int    `json:"flightNumber"`
	SeatCapacity int    `json:"seatCapacity"`
	TicketPrice  int64  `json:"ticketPrice"`
}

type booking struct {
	ID               string  `json:"id"`
	Status           string  `json:"status"`
	BookingReference *string `json:"bookingReference"`
	Customer         string  `json:"customer"`
	PaymentToken     string  `json:"paymentToken"`
	OutboundFlight   flight  `json:"outboundFlight"`
}

const flightFields = `id flightNumber seatCapacity ticketPrice`
const bookingFields = `id status bookingReference customer paymentToken outboundFlight { ` + flightFields + ` }`

func (s *server) flights(token string) map[int]flight {
	var conn struct{ Items []flight }
	s.must(s.gql(token, `{ listFlights(limit: 100) { items { `+flightFields+` } nextToken } }`, nil), "listFlights", &conn)
	out := map[int]flight{}
	for _, f := range conn.Items {
		out[f.FlightNumber] = f
	}
	return out
}

func (s *server) flight(token, id string) flight {
	var f flight
	s.must(s.gql(token, `query($id: ID!) { getFlight(id: $id) { `+flightFields+` } }`, map[string]any{"id": id}), "getFlight", &f)
	return f
}

// charge authorizes amount on a test card token and returns the charge id.
func (s *server) charge(token string, amount int64, card string) string {
	var c struct{ ID string }
	s.must(s.gql(token, `mutation($a: Int!, $t: String!) { createCharge(amount: $a, currency: "EUR", token: $t) { id status } }`,
		map[string]any{"a": amount, "t": card}), "createCharge", &c)
	return c.ID
}

func (s *server) book(token, flightID, chargeID string) booking {
	var b booking
	s.must(s.gql(token, `mutation($in: CreateBookingInput!) { processBooking(input: $in) { `+bookingFields+` } }`,
		map[string]any{"in": map[string]any{"bookingOutboundFlightId": flightID, "paymentToken": chargeID}}), "processBooking", &b)
	return b
}

func (s *server) getBooking(token, id string) *gqlResponse {
	return s.gql(token, `query($id: ID!) { getBooking(id: $id) { `+bookingFields+` } }`, map[string]any{"id": id})
}

// waitBooking polls until the booking leaves UNCONFIRMED.
func (s *server) waitBooking(token, id string) booking {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var b booking
		s.must(s.getBooking(token, id), "getBooking", &b)
		if b.Status != "UNCONFIRMED" || time.Now().After(deadline) {
			return b
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

var _ = context.Background
