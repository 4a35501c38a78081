package main

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHangingWebhookReceiver: a webhook receiver subscribed to every event
// stops answering (each delivery hangs until berth's 10 s client timeout).
// berth stays responsive: GraphQL reads keep their latency and bookings
// still confirm in well under a second, because deliveries hold at most
// four of the 64 saga workers (notify.Config.MaxInFlight); the rest wait,
// unclaimed, for their turn.
func TestHangingWebhookReceiver(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	admin, alice := s.token("admin"), s.token("alice")
	f := s.flights(alice)[1830]

	measure := func(bookings int) (reads, confirms []time.Duration) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				start := time.Now()
				s.flight(alice, f.ID)
				mu.Lock()
				reads = append(reads, time.Since(start))
				mu.Unlock()
			}
		})
		for range bookings {
			start := time.Now()
			b := s.waitBooking(alice, s.book(alice, f.ID, s.charge(alice, 100, "tok_visa")).ID)
			if b.Status != "CONFIRMED" {
				t.Errorf("booking %s", b.Status)
			}
			confirms = append(confirms, time.Since(start))
		}
		close(stop)
		wg.Wait()
		slices.Sort(reads)
		slices.Sort(confirms)
		return reads, confirms
	}
	p := func(d []time.Duration, q int) time.Duration { return d[len(d)*q/100].Round(time.Millisecond) }

	// Cheap flight so the demo flight's 10 seats are not the limit.
	var cheap flight
	s.must(s.gql(admin, `mutation { createFlight(input: {departureDate: "2027-04-01T08:00:00Z", departureAirportCode: "LGW",
		departureAirportName: "London Gatwick", departureCity: "London", departureLocale: "Europe/London",
		arrivalDate: "2027-04-01T10:15:00Z", arrivalAirportCode: "MAD", arrivalAirportName: "Madrid Barajas",
		arrivalCity: "Madrid", arrivalLocale: "Europe/Madrid", ticketPrice: 100, ticketCurrency: "EUR",
		flightNumber: 9100, seatCapacity: 100}) { `+flightFields+` } }`, nil), "createFlight", &cheap)
	f = cheap

	reads0, confirms0 := measure(5)

	var hung atomic.Int64
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	s.must(s.gql(admin, `mutation($u: String!) { registerWebhook(url: $u) { id } }`, map[string]any{"u": hang.URL}), "registerWebhook", &struct{ ID string }{})

	reads1, confirms1 := measure(15)
	t.Logf("GraphQL getFlight p50/p99: %s/%s before, %s/%s while the receiver hangs (%d reads); booking confirmed p50/p99: %s/%s before, %s/%s while it hangs; %d deliveries reached the hanging receiver",
		p(reads0, 50), p(reads0, 99), p(reads1, 50), p(reads1, 99), len(reads1), p(confirms0, 50), p(confirms0, 99), p(confirms1, 50), p(confirms1, 99), hung.Load())
	if p(reads1, 99) > time.Second {
		t.Errorf("GraphQL reads slowed down: p99 %s", p(reads1, 99))
	}
	if p(confirms1, 99) > 3*time.Second {
		t.Errorf("bookings waited behind the webhook deliveries: p99 %s", p(confirms1, 99))
	}
}
