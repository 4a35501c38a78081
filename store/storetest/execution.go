package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

// newExecution returns an execution in status, due at next.
func newExecution(def string, status berth.ExecutionStatus, next time.Time) *berth.Execution {
	return &berth.Execution{
		Definition: def, Status: status, Phase: berth.PhaseForward,
		Input: json.RawMessage(`{"flight":"f1"}`), State: json.RawMessage(`{"seats":2}`),
		Correlation: "booking-1", NextRunAt: next,
	}
}

func createExecution(t *testing.T, b *bundle, x *berth.Execution) *berth.Execution {
	t.Helper()
	b.update(t, func(tx berth.Tx) error { return tx.CreateExecution(x) })
	return x
}

func getExecution(t *testing.T, b *bundle, id string) *berth.Execution {
	t.Helper()
	return view(t, b, func(tx berth.Tx) (*berth.Execution, error) { return tx.GetExecution(id) })
}

func claim(t *testing.T, b *bundle, owner string, lease time.Duration, limit int) []*berth.Execution {
	t.Helper()
	return write(t, b, func(tx berth.Tx) ([]*berth.Execution, error) {
		return tx.ClaimExecutions(berth.Claim{Owner: owner, Lease: lease, Limit: limit})
	})
}

func executionIDs(xs []*berth.Execution) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.ID
	}
	slices.Sort(out)
	return out
}

func sortedIDs(xs ...*berth.Execution) []string { return executionIDs(xs) }

func testExecutions(t *testing.T, b *bundle) {
	x := newExecution("book", berth.ExecutionRunning, Start)
	x.Deadline = Start.Add(15 * time.Minute)
	createExecution(t, b, x)
	if !berth.IsID(x.ID) || x.Version != 1 || !x.CreatedAt.Equal(Start) {
		t.Fatalf("CreateExecution: id %q version %d created %v", x.ID, x.Version, x.CreatedAt)
	}
	assertEqual(t, getExecution(t, b, x.ID), x)

	stale := getExecution(t, b, x.ID)
	now := b.clock.Advance(time.Second)
	x.Phase, x.Step, x.Attempt = berth.PhaseCompensating, 2, 1
	x.State, x.Error = json.RawMessage(`{"seats":2,"charge":"ch_1"}`), "SOLD_OUT: not enough seats left"
	x.NextRunAt, x.LeaseOwner, x.LeaseUntil = now.Add(time.Second), "runner-1", now.Add(30*time.Second)
	b.update(t, func(tx berth.Tx) error { return tx.UpdateExecution(x) })
	if x.Version != 2 || !x.UpdatedAt.Equal(now) {
		t.Fatalf("after UpdateExecution: version %d updated %v", x.Version, x.UpdatedAt)
	}
	assertEqual(t, getExecution(t, b, x.ID), x)

	// The lease-lost signal: an update from an older read is refused.
	stale.Status = berth.ExecutionSucceeded
	wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.UpdateExecution(stale) }), berth.ECONFLICT, "")
	assertEqual(t, getExecution(t, b, x.ID), x)

	missing := newExecution("book", berth.ExecutionRunning, Start)
	missing.ID, missing.Version = berth.NewID(), 1
	wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.UpdateExecution(missing) }), berth.ENOTFOUND, "")
	wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Execution, error) { return tx.GetExecution(missing.ID) }), berth.ENOTFOUND, "")
	dup := newExecution("book", berth.ExecutionRunning, Start)
	dup.ID = x.ID
	wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.CreateExecution(dup) }), berth.ECONFLICT, "")

	// A chosen id is kept.
	chosen := newExecution("book", berth.ExecutionRunning, Start)
	chosen.ID = "exec-chosen"
	createExecution(t, b, chosen)
	assertEqual(t, getExecution(t, b, "exec-chosen"), chosen)
}

func testClaimExecutions(t *testing.T, b *bundle) {
	const lease = 30 * time.Second
	now := Start
	early := createExecution(t, b, newExecution("d", berth.ExecutionRunning, now.Add(-3*time.Minute)))
	earlier := createExecution(t, b, newExecution("d", berth.ExecutionRunning, now.Add(-4*time.Minute)))
	due := createExecution(t, b, newExecution("d", berth.ExecutionRunning, now.Add(-2*time.Minute)))
	dueNow := createExecution(t, b, newExecution("d", berth.ExecutionRunning, now))
	future := createExecution(t, b, newExecution("d", berth.ExecutionRunning, now.Add(time.Minute)))
	createExecution(t, b, newExecution("d", berth.ExecutionSucceeded, now.Add(-time.Hour)))
	createExecution(t, b, newExecution("d", berth.ExecutionFailed, now.Add(-time.Hour)))
	createExecution(t, b, newExecution("d", berth.ExecutionDead, now.Add(-time.Hour)))
	leased := newExecution("d", berth.ExecutionRunning, now.Add(-time.Hour))
	leased.LeaseOwner, leased.LeaseUntil = "other", now.Add(10*time.Second)
	createExecution(t, b, leased)

	// The limit is respected and the longest-waiting go first.
	first := claim(t, b, "a", lease, 2)
	if got, want := executionIDs(first), sortedIDs(earlier, early); !slices.Equal(got, want) {
		t.Fatalf("first claim got %v, want the two earliest due %v", got, want)
	}
	for _, x := range first {
		if x.Status != berth.ExecutionRunning || x.LeaseOwner != "a" || !x.LeaseUntil.Equal(now.Add(lease).Truncate(time.Microsecond)) || x.Version != 2 {
			t.Errorf("claimed %s: status %s owner %q until %v version %d", x.ID, x.Status, x.LeaseOwner, x.LeaseUntil, x.Version)
		}
		assertEqual(t, getExecution(t, b, x.ID), x)
	}
	second := claim(t, b, "a", lease, 10)
	if got, want := executionIDs(second), sortedIDs(due, dueNow); !slices.Equal(got, want) {
		t.Fatalf("second claim got %v, want %v", got, want)
	}
	if got := claim(t, b, "b", lease, 10); len(got) != 0 {
		t.Fatalf("a claim right after got %v, want nothing", executionIDs(got))
	}

	// The other runner's lease runs out first.
	b.clock.Advance(10 * time.Second)
	third := claim(t, b, "b", lease, 10)
	if got, want := executionIDs(third), sortedIDs(leased); !slices.Equal(got, want) {
		t.Fatalf("claim after 10s got %v, want the execution whose lease expired %v", got, want)
	}

	// A minute after the start a's leases and b's have run out, and the
	// future execution has come due.
	now = b.clock.Advance(50 * time.Second)
	fourth := claim(t, b, "b", lease, 10)
	if got, want := executionIDs(fourth), sortedIDs(earlier, early, due, dueNow, future, leased); !slices.Equal(got, want) {
		t.Fatalf("claim after a's lease got %v, want %v", got, want)
	}
	for _, x := range fourth {
		if x.LeaseOwner != "b" || !x.LeaseUntil.Equal(now.Add(lease).Truncate(time.Microsecond)) {
			t.Errorf("re-claimed %s: owner %q until %v", x.ID, x.LeaseOwner, x.LeaseUntil)
		}
	}

	// a lost its lease: its copy is stale.
	lost := first[0]
	lost.Step++
	wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.UpdateExecution(lost) }), berth.ECONFLICT, "")

	// An execution that finished is never claimed again.
	done := fourth[0]
	done.Status, done.LeaseOwner, done.LeaseUntil = berth.ExecutionSucceeded, "", time.Time{}
	b.update(t, func(tx berth.Tx) error { return tx.UpdateExecution(done) })
	b.clock.Advance(time.Hour)
	if got := claim(t, b, "c", lease, 100); len(got) != 5 || slices.Contains(executionIDs(got), done.ID) {
		t.Fatalf("claim after an hour got %v, want the 5 running executions without %s", executionIDs(got), done.ID)
	}
}

func testNextDueAndReleaseLeases(t *testing.T, b *bundle) {
	nextDue := func() time.Time { return view(t, b, func(tx berth.Tx) (time.Time, error) { return tx.NextDue() }) }
	if got := nextDue(); !got.IsZero() {
		t.Fatalf("NextDue of an empty store = %v, want zero", got)
	}
	createExecution(t, b, newExecution("d", berth.ExecutionSucceeded, Start.Add(-time.Hour)))
	createExecution(t, b, newExecution("d", berth.ExecutionDead, Start.Add(-time.Hour)))
	if got := nextDue(); !got.IsZero() {
		t.Fatalf("NextDue without running executions = %v, want zero", got)
	}
	later := createExecution(t, b, newExecution("d", berth.ExecutionRunning, Start.Add(time.Hour)))
	sooner := createExecution(t, b, newExecution("d", berth.ExecutionRunning, Start.Add(time.Minute)))
	if got, want := nextDue(), sooner.NextRunAt.Truncate(time.Microsecond); !got.Equal(want) || got.Location() != time.UTC {
		t.Fatalf("NextDue = %v, want %v", got, want)
	}

	if n := write(t, b, func(tx berth.Tx) (int, error) { return tx.ReleaseLeases() }); n != 0 {
		t.Fatalf("ReleaseLeases without leases = %d", n)
	}
	b.clock.Advance(2 * time.Hour)
	if got := claim(t, b, "crashed", time.Hour, 10); len(got) != 2 {
		t.Fatalf("claimed %d, want 2", len(got))
	}
	if got := claim(t, b, "restarted", time.Hour, 10); len(got) != 0 {
		t.Fatalf("claimed %d leased executions", len(got))
	}
	if n := write(t, b, func(tx berth.Tx) (int, error) { return tx.ReleaseLeases() }); n != 2 {
		t.Fatalf("ReleaseLeases = %d, want 2", n)
	}
	x := getExecution(t, b, later.ID)
	if x.LeaseOwner != "" || !x.LeaseUntil.IsZero() {
		t.Errorf("after ReleaseLeases: owner %q until %v", x.LeaseOwner, x.LeaseUntil)
	}
	if got := claim(t, b, "restarted", time.Hour, 10); len(got) != 2 {
		t.Fatalf("after ReleaseLeases claimed %d, want 2", len(got))
	}
}

func testListExecutions(t *testing.T, b *bundle) {
	var all []*berth.Execution
	statuses := []berth.ExecutionStatus{berth.ExecutionRunning, berth.ExecutionSucceeded, berth.ExecutionFailed, berth.ExecutionDead}
	for i := range 11 {
		def := "book"
		if i%4 == 3 {
			def = "webhook"
		}
		all = append(all, createExecution(t, b, newExecution(def, statuses[i%3], Start)))
	}
	for _, st := range statuses {
		n := 0
		for _, x := range all {
			if x.Status == st {
				n++
			}
		}
		if got := view(t, b, func(tx berth.Tx) (int, error) { return tx.CountExecutions(st) }); got != n {
			t.Errorf("CountExecutions(%s) = %d, want %d", st, got, n)
		}
	}
	for _, q := range []berth.ExecutionQuery{
		{},
		{Status: berth.ExecutionRunning},
		{Status: berth.ExecutionSucceeded, Definition: "book"},
		{Definition: "webhook"},
		{Status: berth.ExecutionDead},
	} {
		var want []string
		for _, x := range all {
			if (q.Status == "" || x.Status == q.Status) && (q.Definition == "" || x.Definition == q.Definition) {
				want = append(want, x.ID)
			}
		}
		slices.Sort(want)
		for _, desc := range []bool{false, true} {
			for _, limit := range []int{1, 2, 100} {
				t.Run(fmt.Sprintf("%s-%s/desc=%v/limit=%d", q.Status, q.Definition, desc, limit), func(t *testing.T) {
					got := paginate(t, b, limit, desc, func(tx berth.Tx, p berth.Page) ([]*berth.Execution, error) {
						q := q
						q.Page = p
						return tx.ListExecutions(q)
					}, func(x *berth.Execution) berth.Cursor { return berth.Cursor{ID: x.ID} })
					ids := make([]string, len(got))
					for i, x := range got {
						ids[i] = x.ID
					}
					w := slices.Clone(want)
					if desc {
						slices.Reverse(w)
					}
					if !slices.Equal(ids, w) {
						t.Fatalf("got %v\nwant %v", ids, w)
					}
				})
			}
		}
	}
}

func testHistory(t *testing.T, b *bundle) {
	x := createExecution(t, b, newExecution("d", berth.ExecutionRunning, Start))
	y := createExecution(t, b, newExecution("d", berth.ExecutionRunning, Start))
	at := Start.Add(-time.Second)
	first := []*berth.HistoryEntry{
		{ExecutionID: x.ID, Type: berth.HistExecutionStarted, Detail: "d"},
		{ExecutionID: x.ID, Type: berth.HistStateEntered, State: "reserve", Attempt: 1, At: at},
	}
	b.update(t, func(tx berth.Tx) error { return tx.AppendHistory(first...) })
	b.update(t, func(tx berth.Tx) error {
		return tx.AppendHistory(&berth.HistoryEntry{ExecutionID: y.ID, Type: berth.HistExecutionStarted, Detail: "d"})
	})
	b.clock.Advance(time.Second)
	second := []*berth.HistoryEntry{
		{ExecutionID: x.ID, Type: berth.HistStateRetried, State: "reserve", Attempt: 1, Detail: "retry in 200ms", Error: "UNAVAILABLE: down"},
	}
	b.update(t, func(tx berth.Tx) error { return tx.AppendHistory(second...) })
	b.update(t, func(tx berth.Tx) error { return tx.AppendHistory() })

	want := append(first, second...)
	if !want[0].At.Equal(Start) {
		t.Errorf("At defaults to %v, want the transaction's time %v", want[0].At, Start)
	}
	for i := 1; i < len(want); i++ {
		if want[i].Seq <= want[i-1].Seq {
			t.Errorf("Seq %d after %d: not increasing", want[i].Seq, want[i-1].Seq)
		}
	}
	assertEqual(t, view(t, b, func(tx berth.Tx) ([]*berth.HistoryEntry, error) { return tx.ListHistory(x.ID) }), want)
	if got := view(t, b, func(tx berth.Tx) ([]*berth.HistoryEntry, error) { return tx.ListHistory("none") }); len(got) != 0 {
		t.Errorf("history of an unknown execution: %v", got)
	}
}

func testEvents(t *testing.T, b *bundle) {
	type ev struct{ typ, who, subject string }
	var all []*berth.Event
	for i, e := range []ev{
		{berth.EventBookingRequested, berth.Customer("alice"), "b1"},
		{berth.EventSeatReserved, berth.Customer("alice"), "b1"},
		{berth.EventBookingRequested, berth.Customer("bob"), "b2"},
		{berth.EventBookingConfirmed, berth.Customer("alice"), "b1"},
		{berth.EventSeatReleased, berth.Customer("bob"), "b2"},
		{berth.EventBookingConfirmed, berth.Customer("bob"), "b3"},
	} {
		x := &berth.Event{Type: e.typ, Source: "berth.airline", Who: e.who, Subject: e.subject}
		if i%2 == 0 {
			x.Detail = json.RawMessage(fmt.Sprintf(`{"n":%d,"note":"ünïcode"}`, i))
		}
		b.update(t, func(tx berth.Tx) error { return tx.AppendEvent(x) })
		if !berth.IsID(x.ID) || !x.At.Equal(b.clock.Now()) {
			t.Fatalf("AppendEvent: id %q at %v", x.ID, x.At)
		}
		if len(all) > 0 && x.Seq <= all[len(all)-1].Seq {
			t.Fatalf("Seq %d after %d: not increasing", x.Seq, all[len(all)-1].Seq)
		}
		if i%2 == 1 && string(x.Detail) != "{}" {
			t.Fatalf("empty detail stored as %q, want {}", x.Detail)
		}
		all = append(all, x)
		b.clock.Advance(time.Millisecond)
	}
	for _, tt := range []struct {
		name string
		q    berth.EventQuery
	}{
		{"All", berth.EventQuery{}},
		{"Who", berth.EventQuery{Who: berth.Customer("alice")}},
		{"Subject", berth.EventQuery{Subject: "b2"}},
		{"Type", berth.EventQuery{Type: berth.EventBookingConfirmed}},
		{"WhoAndType", berth.EventQuery{Who: berth.Customer("bob"), Type: berth.EventBookingRequested}},
		{"AfterSeq", berth.EventQuery{AfterSeq: all[2].Seq}},
		{"AfterSeqAndWho", berth.EventQuery{AfterSeq: all[1].Seq, Who: berth.Customer("alice")}},
		{"Limit", berth.EventQuery{Limit: 2}},
		{"LimitAfterSeq", berth.EventQuery{Limit: 2, AfterSeq: all[3].Seq}},
		{"Nothing", berth.EventQuery{Subject: "none"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var want []*berth.Event
			for _, e := range all {
				if e.Seq > tt.q.AfterSeq && (tt.q.Who == "" || e.Who == tt.q.Who) &&
					(tt.q.Subject == "" || e.Subject == tt.q.Subject) && (tt.q.Type == "" || e.Type == tt.q.Type) &&
					(tt.q.Limit == 0 || len(want) < tt.q.Limit) {
					want = append(want, e)
				}
			}
			assertEqual(t, view(t, b, func(tx berth.Tx) ([]*berth.Event, error) { return tx.ListEvents(tt.q) }), want)
		})
	}
	// A consumer that follows the log with AfterSeq sees every event once.
	var seen []int64
	after := int64(0)
	for {
		page := view(t, b, func(tx berth.Tx) ([]*berth.Event, error) {
			return tx.ListEvents(berth.EventQuery{AfterSeq: after, Limit: 4})
		})
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			seen = append(seen, e.Seq)
		}
		after = page[len(page)-1].Seq
	}
	if len(seen) != len(all) {
		t.Errorf("following the log saw %v", seen)
	}
	dup := &berth.Event{ID: all[0].ID, Type: "X", Source: "s"}
	wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.AppendEvent(dup) }), berth.ECONFLICT, "")
}

func testLoyalty(t *testing.T, b *bundle) {
	points := func(customer string) int64 {
		return view(t, b, func(tx berth.Tx) (int64, error) { return tx.LoyaltyPoints(customer) })
	}
	add := func(e berth.LoyaltyEntry) bool {
		return write(t, b, func(tx berth.Tx) (bool, error) { return tx.AddLoyaltyEntry(&e) })
	}
	if p := points("alice"); p != 0 {
		t.Fatalf("points of a new customer = %d", p)
	}
	for _, step := range []struct {
		entry berth.LoyaltyEntry
		added bool
		alice int64
	}{
		{berth.LoyaltyEntry{BookingID: "b1", Customer: "alice", Kind: berth.LoyaltyEarn, Points: 40000}, true, 40000},
		{berth.LoyaltyEntry{BookingID: "b1", Customer: "alice", Kind: berth.LoyaltyEarn, Points: 40000}, false, 40000},
		{berth.LoyaltyEntry{BookingID: "b1", Customer: "alice", Kind: berth.LoyaltyEarn, Points: 1}, false, 40000},
		{berth.LoyaltyEntry{BookingID: "b2", Customer: "alice", Kind: berth.LoyaltyEarn, Points: 25000}, true, 65000},
		{berth.LoyaltyEntry{BookingID: "b3", Customer: "bob", Kind: berth.LoyaltyEarn, Points: 500}, true, 65000},
		{berth.LoyaltyEntry{BookingID: "b1", Customer: "alice", Kind: berth.LoyaltyRevoke, Points: 40000}, true, 25000},
		{berth.LoyaltyEntry{BookingID: "b1", Customer: "alice", Kind: berth.LoyaltyRevoke, Points: 40000}, false, 25000},
	} {
		if got := add(step.entry); got != step.added {
			t.Fatalf("AddLoyaltyEntry(%+v) = %v, want %v", step.entry, got, step.added)
		}
		if p := points("alice"); p != step.alice {
			t.Fatalf("after %+v alice has %d points, want %d", step.entry, p, step.alice)
		}
	}
	if p := points("bob"); p != 500 {
		t.Fatalf("bob has %d points, want 500", p)
	}
	// Balances above 2^31 survive (SUM of BIGINT is NUMERIC in PostgreSQL).
	add(berth.LoyaltyEntry{BookingID: "big", Customer: "carol", Kind: berth.LoyaltyEarn, Points: 5_000_000_000})
	if p := points("carol"); p != 5_000_000_000 {
		t.Fatalf("carol has %d points", p)
	}
}

func testWebhooks(t *testing.T, b *bundle) {
	w1 := &berth.Webhook{URL: "https://example.com/hook", Secret: "s1", EventTypes: []string{berth.EventBookingConfirmed, berth.EventBookingCancelled}, CreatedBy: "admin"}
	w2 := &berth.Webhook{URL: "https://example.org/all", Secret: "s2", CreatedBy: "admin"}
	for _, w := range []*berth.Webhook{w1, w2} {
		b.update(t, func(tx berth.Tx) error { return tx.CreateWebhook(w) })
		if !berth.IsID(w.ID) || !w.CreatedAt.Equal(Start) {
			t.Fatalf("CreateWebhook: id %q created %v", w.ID, w.CreatedAt)
		}
	}
	assertEqual(t, view(t, b, func(tx berth.Tx) (*berth.Webhook, error) { return tx.GetWebhook(w1.ID) }), w1)
	got2 := view(t, b, func(tx berth.Tx) (*berth.Webhook, error) { return tx.GetWebhook(w2.ID) })
	assertEqual(t, got2, w2)
	if !got2.Matches("anything") {
		t.Errorf("a webhook without event types does not match every event")
	}
	want := []*berth.Webhook{w1, w2}
	slices.SortFunc(want, func(a, b *berth.Webhook) int { return strings.Compare(a.ID, b.ID) })
	assertEqual(t, view(t, b, func(tx berth.Tx) ([]*berth.Webhook, error) { return tx.ListWebhooks() }), want)

	b.update(t, func(tx berth.Tx) error { return tx.DeleteWebhook(w1.ID) })
	wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Webhook, error) { return tx.GetWebhook(w1.ID) }), berth.ENOTFOUND, "")
	wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.DeleteWebhook(w1.ID) }), berth.ENOTFOUND, "")
	assertEqual(t, view(t, b, func(tx berth.Tx) ([]*berth.Webhook, error) { return tx.ListWebhooks() }), []*berth.Webhook{w2})
}

func testKV(t *testing.T, b *bundle) {
	get := func(ns, key string) []byte {
		return view(t, b, func(tx berth.Tx) ([]byte, error) { return tx.GetKV(ns, key) })
	}
	put := func(ns, key, value string) {
		b.update(t, func(tx berth.Tx) error { return tx.PutKV(ns, key, []byte(value)) })
	}
	wantCode(t, viewErr(b, func(tx berth.Tx) ([]byte, error) { return tx.GetKV("payments", "ch_1") }), berth.ENOTFOUND, "")
	put("payments", "ch_1", `{"status":"AUTHORIZED"}`)
	put("other", "ch_1", "another namespace")
	if got := string(get("payments", "ch_1")); got != `{"status":"AUTHORIZED"}` {
		t.Fatalf("GetKV = %q", got)
	}
	put("payments", "ch_1", `{"status":"CAPTURED"}`)
	if got := string(get("payments", "ch_1")); got != `{"status":"CAPTURED"}` {
		t.Fatalf("GetKV after overwrite = %q", got)
	}
	if got := string(get("other", "ch_1")); got != "another namespace" {
		t.Fatalf("namespaces are not separate: %q", got)
	}
	put("payments", "empty", "")
	if got := get("payments", "empty"); len(got) != 0 {
		t.Fatalf("empty value came back as %q", got)
	}
	wantCode(t, viewErr(b, func(tx berth.Tx) ([]byte, error) { return tx.GetKV("payments", "ch_2") }), berth.ENOTFOUND, "")
}

// testTimes checks that every stored time comes back as the same instant at
// microsecond precision, in UTC, whatever zone it was given in.
func testTimes(t *testing.T, b *bundle) {
	zones := []*time.Location{time.UTC, time.FixedZone("UTC+5:30", 5*3600+1800), time.FixedZone("UTC-8", -8*3600)}
	for i, loc := range zones {
		at := Start.Add(time.Duration(i)*time.Hour + 999*time.Nanosecond).In(loc)
		b.clock.Set(at)
		x := newExecution("times", berth.ExecutionRunning, at.Add(time.Nanosecond))
		x.Deadline, x.LeaseUntil = at.Add(time.Hour+1), at.Add(-time.Nanosecond)
		createExecution(t, b, x)
		got := getExecution(t, b, x.ID)
		assertEqual(t, got, x)
		if !got.CreatedAt.Equal(at.Truncate(time.Microsecond)) {
			t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, at.Truncate(time.Microsecond))
		}
		k := &berth.APIKey{ID: berth.NewID(), Name: "t", SecretHash: "h", ExpiresAt: at.Add(123 * time.Nanosecond)}
		b.update(t, func(tx berth.Tx) error { return tx.CreateAPIKey(k) })
		assertEqual(t, view(t, b, func(tx berth.Tx) (*berth.APIKey, error) { return tx.GetAPIKey(k.ID) }), k)
	}
}

// ClaimExecutions with Definitions claims only those definitions' executions;
// with Except, every other definition's.
func testClaimExecutionsByDefinition(t *testing.T, b *bundle) {
	const lease = 30 * time.Second
	at := Start.Add(-time.Minute)
	var ids = map[string][]*berth.Execution{}
	for i, def := range []string{"book", "deliver", "deliver", "job", "book", "deliver"} {
		x := createExecution(t, b, newExecution(def, berth.ExecutionRunning, at.Add(time.Duration(i)*time.Second)))
		ids[def] = append(ids[def], x)
	}
	claimWith := func(c berth.Claim) []*berth.Execution {
		t.Helper()
		c.Owner, c.Lease = "a", lease
		return write(t, b, func(tx berth.Tx) ([]*berth.Execution, error) { return tx.ClaimExecutions(c) })
	}
	// Two of the three deliveries, the longest waiting first.
	if got, want := executionIDs(claimWith(berth.Claim{Limit: 2, Definitions: []string{"deliver"}})), sortedIDs(ids["deliver"][:2]...); !slices.Equal(got, want) {
		t.Fatalf("claim of deliver got %v, want %v", got, want)
	}
	// Everything but deliveries.
	if got, want := executionIDs(claimWith(berth.Claim{Limit: 10, Except: []string{"deliver"}})), sortedIDs(append(slices.Clone(ids["book"]), ids["job"]...)...); !slices.Equal(got, want) {
		t.Fatalf("claim except deliver got %v, want %v", got, want)
	}
	// Both lists, several names: the last delivery only.
	if got, want := executionIDs(claimWith(berth.Claim{Limit: 10, Definitions: []string{"deliver", "book"}, Except: []string{"book", "job"}})), sortedIDs(ids["deliver"][2]); !slices.Equal(got, want) {
		t.Fatalf("claim of deliver or book except book and job got %v, want %v", got, want)
	}
	if got := claimWith(berth.Claim{Limit: 0}); len(got) != 0 {
		t.Fatalf("a claim of 0 got %v", executionIDs(got))
	}
}
