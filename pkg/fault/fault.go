// Package fault is the one error type of the program: a kind that decides the HTTP
// status, a stable machine code and a message safe to show a client, with the
// internal cause kept for logs only.
package fault

import (
	"errors"
	"fmt"
)

// Kind is the class of an error.
type Kind int

// The kinds, each mapped to one HTTP status by the API layer.
const (
	Internal         Kind = iota // 500: never shown in detail
	Invalid                      // 400: malformed or failing validation
	Unauthorized                 // 401: no or bad credentials
	Forbidden                    // 403: authenticated but not allowed
	NotFound                     // 404: absent or outside the caller's scope
	Conflict                     // 409: state does not allow it
	TooLarge                     // 413: over a size limit
	Unprocessable                // 422: understood syntax, unknown name or version
	TooMany                      // 429: rate limited
	Unavailable                  // 503: a dependency is down
	UnsupportedMedia             // 415: a content type not accepted
)

// Error is an error with a kind, a code and a client-safe message.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// Fields maps a field path to what is wrong with it (validation errors).
	Fields map[string]string
	// Extra holds additional top-level response members (e.g. lastMutationId).
	Extra map[string]any
	Err   error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New makes an error of a kind.
func New(kind Kind, code, msg string) *Error {
	return &Error{Kind: kind, Code: code, Message: msg}
}

// Wrap makes an internal error that keeps err for logs.
func Wrap(err error, msg string) *Error {
	return &Error{Kind: Internal, Code: "internal", Message: msg, Err: err}
}

// As returns the *Error in err's chain, or an internal error wrapping err.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Wrap(err, "internal error")
}

// KindOf returns the kind of err (Internal when it carries none).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Fields collects validation errors and turns them into one Invalid error.
type Fields map[string]string

// Add records a problem with a field; the first problem per field wins.
func (f Fields) Add(field, problem string) {
	if _, ok := f[field]; !ok {
		f[field] = problem
	}
}

// Err returns nil when nothing was added, or an Invalid error listing the fields.
func (f Fields) Err(code, msg string) error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Kind: Invalid, Code: code, Message: msg, Fields: map[string]string(f)}
}
