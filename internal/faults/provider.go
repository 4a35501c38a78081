// Package faults injects failures into berth's dependencies for reliability
// tests and checks berth's promises afterwards.
//
//   - Provider wraps a payment.Provider (the outside world) and makes chosen
//     operations fail: a business refusal, a transient error, a hang past
//     the caller's timeout, or "it worked but the reply was lost".
//   - Store wraps a berth.Store (the real database) and makes chosen
//     operations inside transactions fail, or "crashes" the process: the
//     transaction in flight never commits and nothing after it does.
//   - Check reads a store and reports every broken invariant: seats, tickets,
//     money (berth's records and the simulated provider's ledger), dangling
//     authorizations, executions, loyalty points.
//   - Drive runs a saga engine on a fake clock until nothing is left to do.
//
// Only the outside world and failures are simulated: the database is always
// a real SQLite file or PostgreSQL database.
package faults

import (
	"context"
	"fmt"
	"sync"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/payment"
)

// Op is a payment provider operation.
type Op string

// The provider operations.
const (
	OpAuthorize Op = "authorize"
	OpCapture   Op = "capture"
	OpVoid      Op = "void"
	OpRefund    Op = "refund"
)

// Kind is what an injected provider fault does.
type Kind int

const (
	// Refuse is a business failure: the provider answers with Code
	// (PAYMENT_DECLINED by default) and does nothing. Not retried.
	Refuse Kind = iota + 1
	// Transient fails with UNAVAILABLE before reaching the provider.
	Transient
	// Hang blocks until the caller's context is done (its timeout) without
	// reaching the provider, then returns the context's error.
	Hang
	// ReplyLost performs the operation at the provider, then reports
	// UNAVAILABLE: the caller cannot tell it happened.
	ReplyLost
	// DoneThenHang performs the operation, then blocks until the caller's
	// context is done: it happened, but the caller timed out.
	DoneThenHang
)

func (k Kind) String() string {
	switch k {
	case Refuse:
		return "refused"
	case Transient:
		return "transient error"
	case Hang:
		return "hang"
	case ReplyLost:
		return "reply lost"
	case DoneThenHang:
		return "done, then hang"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Fault is one injected provider failure.
type Fault struct {
	Op   Op
	Kind Kind
	// Times is how many calls fail; 0 means every call until Clear.
	Times int
	// Code is the error code of a Refuse (default PAYMENT_DECLINED).
	Code string
}

type providerRule struct {
	Fault
	left int // calls left to fail; -1: unlimited
}

// Provider is a payment.Provider that fails on demand. Its zero value is
// not usable; use NewProvider. It is safe for concurrent use.
type Provider struct {
	inner payment.Provider

	mu       sync.Mutex
	rules    []*providerRule
	down     bool
	calls    map[Op]int
	failures map[Op]int
	inFlight int
	maxIn    int
}

var _ payment.Provider = (*Provider)(nil)

// NewProvider wraps inner (usually the simulated provider).
func NewProvider(inner payment.Provider) *Provider {
	return &Provider{inner: inner, calls: map[Op]int{}, failures: map[Op]int{}}
}

// Inject adds a fault. Faults are consulted in the order they were added;
// the first that matches an operation and has calls left applies.
func (p *Provider) Inject(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	left := f.Times
	if left <= 0 {
		left = -1
	}
	p.rules = append(p.rules, &providerRule{Fault: f, left: left})
}

// Clear removes every fault and ends an outage.
func (p *Provider) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules, p.down = nil, false
}

// SetDown starts (true) or ends (false) an outage: every operation fails
// with UNAVAILABLE without reaching the provider.
func (p *Provider) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// Calls returns how many times op was called (failed or not).
func (p *Provider) Calls(op Op) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[op]
}

// Failures returns how many calls of op failed because of an injected fault.
func (p *Provider) Failures(op Op) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failures[op]
}

// Fired returns how many calls failed because of an injected fault or an
// outage, over every operation.
func (p *Provider) Fired() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, f := range p.failures {
		n += f
	}
	return n
}

// MaxInFlight returns the largest number of calls that were in progress at
// the same time (a bound on the goroutines waiting for the provider).
func (p *Provider) MaxInFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxIn
}

// pick records a call of op and returns the fault to apply (Kind 0: none).
func (p *Provider) pick(op Op) Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[op]++
	p.inFlight++
	p.maxIn = max(p.maxIn, p.inFlight)
	if p.down {
		p.failures[op]++
		return Fault{Op: op, Kind: Transient}
	}
	for _, r := range p.rules {
		if r.Op != op || r.left == 0 {
			continue
		}
		if r.left > 0 {
			r.left--
		}
		p.failures[op]++
		return r.Fault
	}
	return Fault{}
}

func (p *Provider) done() {
	p.mu.Lock()
	p.inFlight--
	p.mu.Unlock()
}

// do applies the fault chosen for op around call.
func (p *Provider) do(ctx context.Context, op Op, call func() error) error {
	f := p.pick(op)
	defer p.done()
	switch f.Kind {
	case Refuse:
		code := f.Code
		if code == "" {
			code = berth.EPAYMENTDECLINED
		}
		return berth.Errorf(code, "the provider refused the %s (injected)", op)
	case Transient:
		return berth.Errorf(berth.EUNAVAILABLE, "the payment provider is unavailable (injected)")
	case Hang:
		<-ctx.Done()
		return ctx.Err()
	case ReplyLost:
		if err := call(); err != nil {
			return err
		}
		return berth.Errorf(berth.EUNAVAILABLE, "connection reset by peer (injected: the %s went through)", op)
	case DoneThenHang:
		if err := call(); err != nil {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	}
	return call()
}

// Authorize implements payment.Provider.
func (p *Provider) Authorize(ctx context.Context, req payment.AuthorizeRequest) (string, error) {
	var ref string
	err := p.do(ctx, OpAuthorize, func() (err error) { ref, err = p.inner.Authorize(ctx, req); return err })
	return ref, err
}

// Capture implements payment.Provider.
func (p *Provider) Capture(ctx context.Context, key, ref string, amount int64) error {
	return p.do(ctx, OpCapture, func() error { return p.inner.Capture(ctx, key, ref, amount) })
}

// Void implements payment.Provider.
func (p *Provider) Void(ctx context.Context, key, ref string) error {
	return p.do(ctx, OpVoid, func() error { return p.inner.Void(ctx, key, ref) })
}

// Refund implements payment.Provider.
func (p *Provider) Refund(ctx context.Context, key, ref string, amount int64) error {
	return p.do(ctx, OpRefund, func() error { return p.inner.Refund(ctx, key, ref, amount) })
}
