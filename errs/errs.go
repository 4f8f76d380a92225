// Package errs holds the one domain error type shared by every adapter.
// REST maps a Code to an HTTP status, GraphQL to extensions.code; the
// Message is always safe to show to the caller.
package errs

import (
	"errors"
	"fmt"
)

// Code classifies an error for the adapters.
type Code string

const (
	Invalid         Code = "invalid_argument"  // malformed input: 400
	Unprocessable   Code = "validation_failed" // well-formed but out of range: 422
	NotFound        Code = "not_found"         // 404
	Conflict        Code = "conflict"          // 409
	Gone            Code = "gone"              // 410
	Unauthenticated Code = "unauthorized"      // 401
	Forbidden       Code = "forbidden"         // 403
	RateLimited     Code = "rate_limited"      // 429
	TooLarge        Code = "payload_too_large" // 413
	Unavailable     Code = "unavailable"       // 503
	Internal        Code = "internal"          // 500
)

// Error is a domain error with a code, a safe message and optional
// per-field messages for validation failures.
type Error struct {
	Code    Code
	Message string
	Fields  map[string]string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// New returns an error with the given code and message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Validation returns an Unprocessable error naming each bad field.
func Validation(fields map[string]string) *Error {
	return &Error{Code: Unprocessable, Message: "request has invalid fields", Fields: fields}
}

// CodeOf reports the code of err, Internal for anything that is not an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// As returns the *Error inside err, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Sentinel errors for common domain cases; compare with errors.Is.
var (
	ErrNotFound     = &Error{Code: NotFound, Message: "not found"}
	ErrNoTenant     = &Error{Code: Unauthenticated, Message: "no tenant in request context"}
	ErrExpired      = &Error{Code: Gone, Message: "this survey link has expired"}
	ErrUnauthorized = &Error{Code: Unauthenticated, Message: "missing or invalid API key"}
)
