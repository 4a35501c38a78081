package airline

import (
	"sync"

	"github.com/berthhq/berth"
)

// watchers lets in-process waiters (getBooking's long-poll) learn when a
// booking may have changed, instead of reading it again and again. A signal
// is only a hint to read the booking again: it is sent after the change
// committed, never carries the change, and is dropped when the waiter has
// one pending already.
type watchers struct {
	mu sync.Mutex
	m  map[string]map[chan struct{}]struct{}
}

// watch registers a waiter for booking id. stop must be called when the
// waiter is done.
func (w *watchers) watch(id string) (changed <-chan struct{}, stop func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.m == nil {
		w.m = map[string]map[chan struct{}]struct{}{}
	}
	set := w.m[id]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		w.m[id] = set
	}
	set[ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(set, ch)
		if len(w.m[id]) == 0 {
			delete(w.m, id)
		}
		w.mu.Unlock()
	}
}

// signal tells booking id's waiters to read it again.
func (w *watchers) signal(id string) {
	w.mu.Lock()
	for ch := range w.m[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	w.mu.Unlock()
}

// WatchBooking returns a channel that receives a value after a change to
// booking id that this process made has committed: a step of its sagas, or
// an admin's update or delete. Call stop when done. When Complete is true
// (the process is the only one on its database), every change is signalled;
// otherwise changes made by other replicas are not, and a waiter must also
// read the booking from time to time.
func (s *Service) WatchBooking(id string) (changed <-chan struct{}, stop func()) {
	return s.watchers.watch(id)
}

// WatchComplete reports whether WatchBooking sees every change: the saga
// engine is the only runner on the database (SQLite, data directory
// locked).
func (s *Service) WatchComplete() bool { return s.cfg.Engine.Exclusive() }

// committed is the sagas' Definition.Committed: their executions are about
// the booking in Correlation.
func (s *Service) committed(x *berth.Execution) { s.watchers.signal(x.Correlation) }
