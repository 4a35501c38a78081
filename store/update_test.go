package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/internal/testdb"
)

// TestConcurrentUpdates races many Updates, some of whose closures fail,
// panic or are cancelled, for the seats of one flight (on SQLite they share
// group commits). Whatever the batches were: a failed closure leaves no
// write, every successful one committed, the seat count never goes
// negative, and seats taken = holds = successful closures.
func TestConcurrentUpdates(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects() {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := open(t, d, nil)
			const goroutines, perGoroutine, seats = 32, 12, 120 // 384 attempts, about 155 of them would succeed
			f := &berth.Flight{FlightNumber: 7, DepartureDate: "2027-06-01T08:00:00Z", ArrivalDate: "2027-06-01T10:30:00Z",
				DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD"}
			f.Kind, f.Name, f.Capacity, f.Available, f.Price, f.Currency = berth.KindFlight, "LGW-MAD", seats, seats, 100, "EUR"
			if err := db.Update(ctx, func(tx berth.Tx) error { return tx.CreateFlight(f) }); err != nil {
				t.Fatal(err)
			}
			errFail := errors.New("fail after writing")
			var (
				mu                            sync.Mutex
				ok, soldOut, failed, panicked int
				cancelled                     int
				okKeys                        []string
			)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					<-start
					for i := range perGoroutine {
						key := fmt.Sprintf("g%d-%d", g, i)
						mode := (g + i) % 5 // 0, 1: plain; 2: fails; 3: panics; 4: cancelled
						cctx, cancel := context.WithCancel(ctx)
						if mode == 4 {
							cancel()
						}
						var p any
						err := func() (err error) {
							defer func() { p = recover() }()
							return db.Update(cctx, func(tx berth.Tx) error {
								if _, err := tx.Reserve(&berth.Hold{Key: key, ResourceID: f.ID, BookingID: key, Quantity: 1}); err != nil {
									return err
								}
								if err := tx.PutKV("ledger", key, []byte("1")); err != nil {
									return err
								}
								switch mode {
								case 2:
									return errFail
								case 3:
									panic("boom " + key)
								}
								return nil
							})
						}()
						cancel()
						mu.Lock()
						switch {
						case p != nil:
							if p != "boom "+key {
								t.Errorf("%s: recovered %v", key, p)
							}
							panicked++
						case err == nil:
							if mode != 0 && mode != 1 {
								t.Errorf("%s (mode %d) succeeded", key, mode)
							}
							ok++
							okKeys = append(okKeys, key)
						case berth.ErrorCode(err) == berth.ESOLDOUT:
							soldOut++
						case errors.Is(err, errFail):
							failed++
						case errors.Is(err, context.Canceled) && mode == 4:
							cancelled++
						default:
							t.Errorf("%s (mode %d): %v", key, mode, err)
						}
						mu.Unlock()
					}
				})
			}
			close(start)
			wg.Wait()

			var got *berth.Flight
			var ledger []string
			var holds int
			err := db.View(ctx, func(tx berth.Tx) (err error) {
				if got, err = tx.GetFlight(f.ID); err != nil {
					return err
				}
				for g := range goroutines {
					for i := range perGoroutine {
						key := fmt.Sprintf("g%d-%d", g, i)
						if _, err := tx.GetKV("ledger", key); err == nil {
							ledger = append(ledger, key)
						} else if berth.ErrorCode(err) != berth.ENOTFOUND {
							return err
						}
						if h, err := tx.GetHold(key); err == nil && h.Status == berth.HoldHeld {
							holds++
						} else if err != nil && berth.ErrorCode(err) != berth.ENOTFOUND {
							return err
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d ok, %d sold out, %d failed, %d panicked, %d cancelled", ok, soldOut, failed, panicked, cancelled)
			if got.Available < 0 || got.Available > seats {
				t.Fatalf("available = %d", got.Available)
			}
			if taken := seats - got.Available; taken != ok {
				t.Errorf("%d seats taken, %d successful closures", taken, ok)
			}
			if holds != ok {
				t.Errorf("%d holds, %d successful closures", holds, ok)
			}
			if len(ledger) != ok {
				t.Errorf("%d ledger entries, %d successful closures", len(ledger), ok)
			}
			want := map[string]bool{}
			for _, k := range okKeys {
				want[k] = true
			}
			for _, k := range ledger {
				if !want[k] {
					t.Errorf("ledger entry %s of a closure that did not succeed", k)
				}
			}
			if ok+soldOut+failed+panicked+cancelled != goroutines*perGoroutine {
				t.Errorf("outcomes do not add up")
			}
		})
	}
}
