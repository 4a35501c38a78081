package berth

import (
	"context"
	"errors"
	"fmt"
)

// Error codes. They are stable: clients switch on them (GraphQL
// extensions.code, the REST error body's "code").
const (
	EINVALID         = "INVALID"          // the input is malformed or violates a rule
	ENOTFOUND        = "NOT_FOUND"        // the thing does not exist, or the caller may not see it
	ECONFLICT        = "CONFLICT"         // the request collides with the current state
	EUNAUTHENTICATED = "UNAUTHENTICATED"  // no valid credentials
	EFORBIDDEN       = "FORBIDDEN"        // authenticated, but not allowed
	ESOLDOUT         = "SOLD_OUT"         // not enough capacity left
	EPAYMENTDECLINED = "PAYMENT_DECLINED" // the payment provider refused
	ERATELIMITED     = "RATE_LIMITED"     // too many requests
	ETIMEOUT         = "TIMEOUT"          // a deadline passed (hold expired, step timed out)
	EUNAVAILABLE     = "UNAVAILABLE"      // a dependency is down; retrying later may work
	EINTERNAL        = "INTERNAL"         // a bug or an unexpected failure; details are logged, not shown
)

// Error is berth's application error: a stable code and a message that is
// safe to show to the caller.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("berth error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, "" for nil
// and EINTERNAL for any other error.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	} else if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return ETIMEOUT
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic message for any other error: internal details are never shown.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	} else if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "the request timed out or was cancelled"
	}
	return "internal error"
}

// IsBusiness reports whether err is an expected business outcome (sold out,
// declined, invalid, not found, conflict, forbidden): retrying the same call
// cannot change it. Internal, unavailable and timeout errors are not
// business errors: a retry may succeed.
func IsBusiness(err error) bool {
	switch ErrorCode(err) {
	case EINVALID, ENOTFOUND, ECONFLICT, EUNAUTHENTICATED, EFORBIDDEN, ESOLDOUT, EPAYMENTDECLINED:
		return true
	}
	return false
}
