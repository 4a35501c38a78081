package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// The GraphQL operations the load generator sends: the original airline
// front end's, with the fields it needs and nothing more.
const (
	qCreateFlight = `mutation($in: CreateFlightInput!) { createFlight(input: $in) { id seatCapacity ticketPrice ticketCurrency } }`
	qGetFlight    = `query($id: ID!) { getFlight(id: $id) { id seatCapacity seatAllocation } }`
	qCreateCharge = `mutation($a: Int!, $c: String!) { createCharge(amount: $a, currency: $c, token: "tok_visa") { id status } }`
	qProcess      = `mutation($f: ID!, $p: String!) { processBooking(input: {bookingOutboundFlightId: $f, paymentToken: $p}) { id status } }`
	qGetBooking   = `query($id: ID!) { getBooking(id: $id) { status } }`
	qWaitBooking  = `query($id: ID!, $t: Int) { getBooking(id: $id, waitFor: [CONFIRMED, CANCELLED], timeoutMs: $t) { status } }`
)

// client speaks GraphQL over HTTP/1.1 with keep-alive connections.
type client struct {
	base string // http://host:port
	hc   *http.Client
	tr   *http.Transport
	// requests counts the GraphQL requests sent.
	requests atomic.Int64
}

// newClient returns a client whose transport keeps an idle connection for
// every virtual user, so that the measurement never includes TCP set-up.
func newClient(base string, conns int) *client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     8 << 10,
		ReadBufferSize:      8 << 10,
	}
	return &client{base: strings.TrimRight(base, "/"), tr: tr, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// OpError is a failed operation: the GraphQL error code (extensions.code),
// HTTP_<status> for an HTTP failure without a GraphQL error, or NETWORK.
type OpError struct {
	Code    string
	Message string
}

func (e *OpError) Error() string { return e.Code + ": " + e.Message }

// codeOf returns the code of an *OpError, or NETWORK.
func codeOf(err error) string {
	var oe *OpError
	if errors.As(err, &oe) {
		return oe.Code
	}
	return "NETWORK"
}

type gqlRequest struct {
	Query     string         `json:"query"`
	Variables map[string]any `json:"variables,omitempty"`
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	} `json:"errors"`
}

// do sends one operation as token and decodes its data into out (a pointer
// to a struct with the operation's field).
func (c *client) do(ctx context.Context, token, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(gqlRequest{Query: query, Variables: vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	c.requests.Add(1)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return &OpError{Code: "NETWORK", Message: err.Error()}
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return &OpError{Code: "NETWORK", Message: err.Error()}
	}
	var r gqlResponse
	if err := json.Unmarshal(b, &r); err != nil {
		if resp.StatusCode != http.StatusOK {
			return &OpError{Code: fmt.Sprintf("HTTP_%d", resp.StatusCode), Message: strings.TrimSpace(string(b))}
		}
		return &OpError{Code: "BAD_RESPONSE", Message: err.Error()}
	}
	if len(r.Errors) > 0 {
		code := r.Errors[0].Extensions.Code
		if code == "" {
			code = fmt.Sprintf("HTTP_%d", resp.StatusCode)
		}
		return &OpError{Code: code, Message: r.Errors[0].Message}
	}
	if resp.StatusCode != http.StatusOK {
		return &OpError{Code: fmt.Sprintf("HTTP_%d", resp.StatusCode), Message: strings.TrimSpace(string(b))}
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			return &OpError{Code: "BAD_RESPONSE", Message: err.Error()}
		}
	}
	return nil
}

// get fetches path (e.g. /metrics) and returns the body.
func (c *client) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, nil
}

type flightData struct {
	ID             string `json:"id"`
	SeatCapacity   int    `json:"seatCapacity"`
	SeatAllocation *int   `json:"seatAllocation"`
	TicketPrice    int64  `json:"ticketPrice"`
	TicketCurrency string `json:"ticketCurrency"`
}

func (c *client) createFlight(ctx context.Context, token string, number, seats int, price int64, currency string) (*flightData, error) {
	in := map[string]any{
		"departureDate": "2027-06-01T08:00:00Z", "departureAirportCode": "LGW", "departureAirportName": "London Gatwick",
		"departureCity": "London", "departureLocale": "Europe/London",
		"arrivalDate": "2027-06-01T10:30:00Z", "arrivalAirportCode": "MAD", "arrivalAirportName": "Madrid Barajas",
		"arrivalCity": "Madrid", "arrivalLocale": "Europe/Madrid",
		"ticketPrice": price, "ticketCurrency": currency, "flightNumber": number, "seatAllocation": seats, "seatCapacity": seats,
	}
	var out struct{ CreateFlight *flightData }
	if err := c.do(ctx, token, qCreateFlight, map[string]any{"in": in}, &out); err != nil {
		return nil, err
	}
	if out.CreateFlight == nil {
		return nil, &OpError{Code: "BAD_RESPONSE", Message: "createFlight returned null"}
	}
	return out.CreateFlight, nil
}

func (c *client) getFlight(ctx context.Context, token, id string) (*flightData, error) {
	var out struct{ GetFlight *flightData }
	if err := c.do(ctx, token, qGetFlight, map[string]any{"id": id}, &out); err != nil {
		return nil, err
	}
	if out.GetFlight == nil {
		return nil, &OpError{Code: "NOT_FOUND", Message: "flight " + id}
	}
	return out.GetFlight, nil
}

func (c *client) createCharge(ctx context.Context, token string, amount int64, currency string) (string, error) {
	var out struct {
		CreateCharge *struct{ ID, Status string }
	}
	if err := c.do(ctx, token, qCreateCharge, map[string]any{"a": amount, "c": currency}, &out); err != nil {
		return "", err
	}
	if out.CreateCharge == nil || out.CreateCharge.ID == "" {
		return "", &OpError{Code: "BAD_RESPONSE", Message: "createCharge returned no charge"}
	}
	return out.CreateCharge.ID, nil
}

func (c *client) processBooking(ctx context.Context, token, flight, charge string) (string, error) {
	var out struct {
		ProcessBooking *struct{ ID, Status string }
	}
	if err := c.do(ctx, token, qProcess, map[string]any{"f": flight, "p": charge}, &out); err != nil {
		return "", err
	}
	if out.ProcessBooking == nil || out.ProcessBooking.ID == "" {
		return "", &OpError{Code: "BAD_RESPONSE", Message: "processBooking returned no booking"}
	}
	return out.ProcessBooking.ID, nil
}

// bookingStatus reads a booking's status.
func (c *client) bookingStatus(ctx context.Context, token, id string) (string, error) {
	return c.getBooking(ctx, token, qGetBooking, map[string]any{"id": id}, id)
}

// waitBooking reads a booking's status once it is CONFIRMED or CANCELLED,
// or as it is after timeoutMs.
func (c *client) waitBooking(ctx context.Context, token, id string, timeoutMs int) (string, error) {
	return c.getBooking(ctx, token, qWaitBooking, map[string]any{"id": id, "t": timeoutMs}, id)
}

func (c *client) getBooking(ctx context.Context, token, query string, vars map[string]any, id string) (string, error) {
	var out struct {
		GetBooking *struct{ Status string }
	}
	if err := c.do(ctx, token, query, vars, &out); err != nil {
		return "", err
	}
	if out.GetBooking == nil {
		return "", &OpError{Code: "NOT_FOUND", Message: "booking " + id}
	}
	return out.GetBooking.Status, nil
}
