package httpapi

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthhq/berth"
)

// RateLimit configures the request rate limits: token buckets per client
// address and per identity (a token's subject or an API key). A request
// over a limit is answered 429 with a Retry-After header and an error with
// code RATE_LIMITED (in the GraphQL shape on /graphql). The probes /healthz
// and /readyz are never limited. The zero value turns both limits off.
type RateLimit struct {
	// PerIP is the sustained rate allowed to one client address, in
	// requests per second; 0 turns the limit off. IPv6 addresses are
	// grouped by /64, the block one host usually holds.
	PerIP float64
	// PerIdentity is the sustained rate allowed to one token subject or
	// API key, in requests per second; 0 turns the limit off. Anonymous
	// requests are limited only per address.
	PerIdentity float64
	// Burst is how many requests a bucket holds: how many may arrive at
	// once after a quiet spell. 0 means twice the rate (at least 1).
	Burst int
	// ClientIPHeader names the header in which a trusted reverse proxy
	// passes the client's address (X-Forwarded-For, X-Real-IP); the last
	// address in it, the one the proxy appended, is used. Empty: the
	// address of the connection. Set it only behind a proxy that
	// overwrites or appends to the header, or clients choose their key.
	ClientIPHeader string
	// MaxKeys bounds the buckets kept per limit. Idle buckets (full again)
	// are dropped first; past the bound an arbitrary bucket is dropped,
	// which only gives its key a fresh burst. Defaults to 100,000 (about
	// 10 MB).
	MaxKeys int
}

// Validate returns INVALID for a negative or non-finite rate or a negative
// burst.
func (c RateLimit) Validate() error {
	for _, r := range []float64{c.PerIP, c.PerIdentity} {
		if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			return berth.Errorf(berth.EINVALID, "a rate limit must be a number of requests per second, 0 for none")
		}
	}
	if c.Burst < 0 || c.MaxKeys < 0 {
		return berth.Errorf(berth.EINVALID, "the rate limit burst must not be negative")
	}
	return nil
}

// DefaultRateLimitKeys is the default of RateLimit.MaxKeys.
const DefaultRateLimitKeys = 100_000

// limiter is a set of token buckets, one per key, with the same rate and
// burst. It is safe for concurrent use.
type limiter struct {
	rate    float64 // tokens per second
	burst   float64
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time // when tokens was computed
}

// newLimiter returns a limiter, or nil if rate is not positive (no limit).
func newLimiter(rate float64, burst, maxKeys int, now func() time.Time) *limiter {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil
	}
	b := float64(burst)
	if burst <= 0 {
		b = math.Max(1, math.Ceil(2*rate))
	}
	if maxKeys <= 0 {
		maxKeys = DefaultRateLimitKeys
	}
	return &limiter{rate: rate, burst: b, maxKeys: maxKeys, now: now, buckets: map[string]*bucket{}}
}

// refill is how long an empty bucket takes to fill up: a bucket untouched
// for that long is full, the same as no bucket at all.
func (l *limiter) refill() time.Duration {
	return time.Duration(l.burst / l.rate * float64(time.Second))
}

// allow takes a token from key's bucket. If there is none, it returns false
// and how long until there is one.
func (l *limiter) allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= max(l.refill(), time.Second) {
		l.sweep(now)
	}
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxKeys {
			l.sweep(now)
			for k := range l.buckets { // still full: drop any one
				if len(l.buckets) < l.maxKeys {
					break
				}
				delete(l.buckets, k)
			}
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	} else if d := now.Sub(b.last); d > 0 { // a clock going back refills nothing
		b.tokens = math.Min(l.burst, b.tokens+d.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// sweep drops the buckets that are full again.
func (l *limiter) sweep(now time.Time) {
	l.lastSweep = now
	idle := l.refill()
	for k, b := range l.buckets {
		if now.Sub(b.last) >= idle {
			delete(l.buckets, k)
		}
	}
}

// size returns the number of buckets kept.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// unlimited are the routes no limit applies to: an orchestrator's probes
// must not fail because a client is being throttled.
var unlimited = map[string]bool{"/healthz": true, "/readyz": true}

// limitByIP refuses requests over the per-address limit. It runs before
// authentication, so that a flood costs no signature checks or key
// look-ups.
func limitByIP(l *limiter, header string, next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !unlimited[r.URL.Path] {
			if ok, wait := l.allow("ip:" + clientKey(r, header)); !ok {
				tooMany(w, r, wait)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// limitByIdentity refuses requests over the per-identity limit. It runs
// after authentication, on the verified actor.
func limitByIdentity(l *limiter, next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := berth.ActorFromContext(r.Context()); a != nil && a.Subject != "" && !unlimited[r.URL.Path] {
			if ok, wait := l.allow("id:" + string(a.Kind) + ":" + a.Subject); !ok {
				tooMany(w, r, wait)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// tooMany answers 429 with Retry-After in whole seconds (at least 1).
func tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusTooManyRequests, gqlOrRESTError(r, berth.ERATELIMITED,
		fmt.Sprintf("too many requests; retry in %d s", secs)))
}

// clientKey returns the client address a request is limited by: the last
// address of header if it is set and holds one, else the connection's
// address. IPv6 addresses are cut to their /64.
func clientKey(r *http.Request, header string) string {
	var ip net.IP
	if header != "" {
		vals := r.Header.Values(header)
		if len(vals) > 0 {
			parts := strings.Split(vals[len(vals)-1], ",")
			ip = parseIP(strings.TrimSpace(parts[len(parts)-1]))
		}
	}
	if ip == nil {
		ip = parseIP(r.RemoteAddr)
	}
	if ip == nil {
		return r.RemoteAddr
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// parseIP parses an address with or without a port.
func parseIP(s string) net.IP {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	return net.ParseIP(strings.Trim(s, "[]"))
}
