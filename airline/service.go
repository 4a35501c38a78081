package airline

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/saga"
)

// Source is the event source of the airline vertical.
const Source = "berth.airline"

// Config configures the airline service. Zero values take the defaults.
type Config struct {
	Store    berth.Store
	Engine   *saga.Engine
	Bus      *saga.Bus
	Payments payment.Provider
	Logger   *slog.Logger
	// HoldTime is how long a booking may stay unconfirmed before its saga
	// is compensated and it ends CANCELLED. Defaults to 15 minutes.
	HoldTime time.Duration
	// CancelWait is how long cancelBooking waits for its saga before it
	// answers with the booking as it is. Defaults to 10s.
	CancelWait time.Duration
	// StepRetry is the retry policy of saga steps and compensations.
	// Defaults to 6 attempts from 200ms doubling to 30s.
	StepRetry saga.RetryPolicy
	// OnInvalidRequest is called when a booking request is refused (for the
	// InvalidBookingRequest metric).
	OnInvalidRequest func()
}

// Service is the airline vertical.
type Service struct {
	cfg     Config
	book    *saga.Definition[BookingState]
	cancel  *saga.Definition[BookingState]
	charges *payment.Charges
	// watchers are told of committed changes to bookings (WatchBooking).
	watchers watchers
}

// New registers the airline sagas on cfg.Engine and returns the service.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HoldTime <= 0 {
		cfg.HoldTime = 15 * time.Minute
	}
	if cfg.CancelWait <= 0 {
		cfg.CancelWait = 10 * time.Second
	}
	if cfg.StepRetry.MaxAttempts == 0 {
		cfg.StepRetry = saga.RetryPolicy{MaxAttempts: 6, Initial: 200 * time.Millisecond, Max: 30 * time.Second}
	}
	s := &Service{cfg: cfg, charges: payment.NewCharges(cfg.Store, cfg.Payments)}
	s.book = s.processBookingSaga()
	s.cancel = s.cancelBookingSaga()
	saga.MustRegister(cfg.Engine, s.book)
	saga.MustRegister(cfg.Engine, s.cancel)
	return s
}

// Charges returns the charge service (createCharge).
func (s *Service) Charges() *payment.Charges { return s.charges }

// MaxPageSize bounds the limit argument of list queries.
const MaxPageSize = 1000

// DefaultPageSize is the page size when no limit is given.
const DefaultPageSize = 100

// maxScan bounds how many rows one filtered list request reads; a page may
// come back short with a nextToken when the filter matches few rows.
const maxScan = 5000

// PageRequest is a transport's pagination input.
type PageRequest struct {
	Limit     *int
	NextToken *string
	Desc      bool
}

func (p PageRequest) parse() (berth.Page, error) {
	out := berth.Page{Limit: DefaultPageSize, Desc: p.Desc}
	if p.Limit != nil {
		if *p.Limit < 1 || *p.Limit > MaxPageSize {
			return out, berth.Errorf(berth.EINVALID, "limit must be between 1 and %d", MaxPageSize)
		}
		out.Limit = *p.Limit
	}
	if p.NextToken != nil && *p.NextToken != "" {
		c, err := DecodeToken(*p.NextToken)
		if err != nil {
			return out, err
		}
		out.After = c
	}
	return out, nil
}

// EncodeToken makes an opaque nextToken from a cursor.
func EncodeToken(c *berth.Cursor) *string {
	if c == nil {
		return nil
	}
	b, _ := json.Marshal([2]string{c.Key, c.ID})
	s := base64.RawURLEncoding.EncodeToString(b)
	return &s
}

// DecodeToken parses a nextToken made by EncodeToken.
func DecodeToken(s string) (*berth.Cursor, error) {
	var kv [2]string
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(s) > 512 || json.Unmarshal(b, &kv) != nil {
		return nil, berth.Errorf(berth.EINVALID, "nextToken is malformed; pass back the nextToken of the previous page")
	}
	return &berth.Cursor{Key: kv[0], ID: kv[1]}, nil
}

// scan pages through a store list with fetch, keeping items that match,
// until limit items are found, the list ends, or maxScan rows were read.
// It returns the items and the cursor to continue from (nil at the end).
func scan[T any](p berth.Page, fetch func(berth.Page) ([]*T, error), cursor func(*T) berth.Cursor, match func(*T) bool) ([]*T, *berth.Cursor, error) {
	var out []*T
	scanned := 0
	page := p
	want := p.Limit
	for {
		page.Limit = min(max(want-len(out), 20), 500)
		rows, err := fetch(page)
		if err != nil {
			return nil, nil, err
		}
		for i, r := range rows {
			scanned++
			if match(r) {
				out = append(out, r)
			}
			c := cursor(r)
			if len(out) == want || scanned >= maxScan {
				more := i < len(rows)-1 || len(rows) == page.Limit
				if !more {
					return out, nil, nil
				}
				return out, &c, nil
			}
		}
		if len(rows) < page.Limit {
			return out, nil, nil
		}
		c := cursor(rows[len(rows)-1])
		page.After = &c
	}
}
