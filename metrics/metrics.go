// Package metrics exposes berth's Prometheus metrics: the airline service's
// original CloudWatch metrics (SuccessfulBooking, FailedReservation, …) as
// counters with a documented name mapping (docs/METRICS.md), plus request
// and saga-step latency histograms and dead-letter gauges.
package metrics

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/saga"
	bstore "github.com/berthhq/berth/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Names are the original metric names; each is exported as
// berth_<snake_case>_total with a "service" label and, where the original
// had it, "operation".
var Names = []string{"ColdStart", "InvalidBookingRequest", "SuccessfulReservation", "FailedReservation", "SuccessfulPayment",
	"FailedPayment", "SuccessfulBooking", "FailedBooking", "SuccessfulCancellation", "FailedCancellation", "SuccessfulRefund",
	"FailedRefund", "SuccessfulNotification", "FailedNotification"}

var camel = regexp.MustCompile(`([a-z0-9])([A-Z])`)

// PromName returns the Prometheus name of an original metric name.
func PromName(name string) string {
	return "berth_" + strings.ToLower(camel.ReplaceAllString(name, "${1}_${2}")) + "_total"
}

// Metrics holds berth's collectors.
type Metrics struct {
	Registry *prometheus.Registry
	counters map[string]*prometheus.CounterVec
	http     *prometheus.HistogramVec
	steps    *prometheus.HistogramVec
}

// New creates the collectors. store, if not nil, feeds the execution gauges.
func New(store berth.Store) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry(), counters: map[string]*prometheus.CounterVec{}}
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, n := range Names {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: PromName(n), Help: "The airline service's " + n + " metric."},
			[]string{"service", "operation"})
		m.counters[n] = c
		m.Registry.MustRegister(c)
	}
	m.http = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "berth_http_request_duration_seconds",
		Help: "HTTP request latency by route and status code.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)},
		[]string{"method", "route", "code"})
	m.steps = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "berth_saga_step_duration_seconds",
		Help: "Saga action latency by definition, step and outcome.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)},
		[]string{"definition", "step", "outcome"})
	m.Registry.MustRegister(m.http, m.steps)
	if st, ok := store.(interface{ Stats() bstore.Stats }); ok {
		m.Registry.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "berth_store_updates_total",
				Help: "Read-write transactions (Store.Update calls) committed."},
				func() float64 { return float64(st.Stats().Updates) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "berth_store_commits_total",
				Help: "Database COMMITs that committed them (fewer with SQLite's group commit: each costs one fsync)."},
				func() float64 { return float64(st.Stats().Commits) }))
	}
	if store != nil {
		for _, st := range []berth.ExecutionStatus{berth.ExecutionRunning, berth.ExecutionDead} {
			m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "berth_saga_executions",
				Help: "Saga executions by status (DEAD = the dead-letter queue).", ConstLabels: prometheus.Labels{"status": string(st)}},
				func() float64 {
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					defer cancel()
					var n int
					_ = store.View(ctx, func(tx berth.Tx) (err error) { n, err = tx.CountExecutions(st); return err })
					return float64(n)
				}))
		}
	}
	return m
}

// Inc adds one to an original metric.
func (m *Metrics) Inc(name, service, operation string) {
	if c, ok := m.counters[name]; ok {
		c.WithLabelValues(service, operation).Inc()
	}
}

// stepMetrics maps saga states to the original metrics for success and
// final failure. Retries are not failures.
var stepMetrics = map[string][2]string{
	"Reserve Flight":           {"SuccessfulReservation", "FailedReservation"},
	"Collect Payment":          {"SuccessfulPayment", "FailedPayment"},
	"Confirm Booking":          {"SuccessfulBooking", "FailedBooking"},
	"Cancel Booking":           {"SuccessfulCancellation", "FailedCancellation"},
	"Refund Payment":           {"SuccessfulRefund", "FailedRefund"},
	"Notify Booking Confirmed": {"SuccessfulNotification", "FailedNotification"},
	"Notify Booking Failed":    {"SuccessfulNotification", "FailedNotification"},
	"Notify Booking Cancelled": {"SuccessfulNotification", "FailedNotification"},
}

// OnStep records a saga action attempt: the latency histogram and the
// original metric of the state.
func (m *Metrics) OnStep(r saga.StepResult) {
	m.steps.WithLabelValues(r.Definition, r.Step, r.Outcome).Observe(r.Duration.Seconds())
	names, ok := stepMetrics[r.Step]
	if !ok {
		return
	}
	switch r.Outcome {
	case "succeeded":
		m.Inc(names[0], "booking", r.Definition)
	case "failed":
		m.Inc(names[1], "booking", r.Definition)
	}
	if r.Step == "Notify Booking Failed" && r.Outcome == "succeeded" {
		m.Inc("FailedBooking", "booking", r.Definition)
	}
}

// OnWebhook records a webhook delivery attempt.
func (m *Metrics) OnWebhook(ok bool) {
	if ok {
		m.Inc("SuccessfulNotification", "notification", "webhook")
	} else {
		m.Inc("FailedNotification", "notification", "webhook")
	}
}

// ObserveHTTP records one request's latency.
func (m *Metrics) ObserveHTTP(method, route string, code int, d time.Duration) {
	m.http.WithLabelValues(method, route, strconv.Itoa(code)).Observe(d.Seconds())
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
