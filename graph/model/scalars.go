// Package model holds the GraphQL types: hand-written ones that wrap the
// domain's (this file, survey.go) and gqlgen's generated inputs and enums
// (models_gen.go).
package model

import (
	"io"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/csat/csat/errs"
)

// MarshalTime writes a time as RFC 3339 in UTC, like REST.
func MarshalTime(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(t.UTC().Format(time.RFC3339)))
	})
}

// UnmarshalTime reads an RFC 3339 time.
func UnmarshalTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, errs.New(errs.Invalid, "a Time must be an RFC 3339 string like 2026-03-07T14:00:00Z")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errs.New(errs.Invalid, "%q is not an RFC 3339 time like 2026-03-07T14:00:00Z", truncate(s))
	}
	return t.UTC(), nil
}

// DateLayout is the Date scalar's form.
const DateLayout = "2006-01-02"

// MarshalDate writes a YYYY-MM-DD day (the domain keeps days as strings).
func MarshalDate(d string) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(d)) })
}

// UnmarshalDate reads a YYYY-MM-DD day strictly.
func UnmarshalDate(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", errs.New(errs.Invalid, "a Date must be a string like 2026-03-07")
	}
	if _, err := time.Parse(DateLayout, s); err != nil || len(s) != len(DateLayout) {
		return "", errs.New(errs.Invalid, "%q is not a date like 2026-03-07", truncate(s))
	}
	return s, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
