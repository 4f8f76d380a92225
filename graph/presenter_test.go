package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/csat/csat/errs"
)

// TestPresenter maps every domain code to its GraphQL code; internal
// errors are logged and shown generically.
func TestPresenter(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		code    string
		message string // "" keeps the domain message
		logged  bool
		unavail bool
	}{
		{"unauthenticated", errs.ErrUnauthorized, "UNAUTHENTICATED", "", false, false},
		{"no-tenant", errs.ErrNoTenant, "UNAUTHENTICATED", "", false, false},
		{"forbidden", errs.New(errs.Forbidden, "this API key lacks the csat:read scope"), "FORBIDDEN", "", false, false},
		{"invalid", errs.New(errs.Invalid, "first must be from 0 to 100"), "BAD_USER_INPUT", "", false, false},
		{"unprocessable", errs.Validation(map[string]string{"x": "bad"}), "BAD_USER_INPUT", "", false, false},
		{"conflict", errs.New(errs.Conflict, "already answered"), "BAD_USER_INPUT", "", false, false},
		{"gone", errs.ErrExpired, "BAD_USER_INPUT", "", false, false},
		{"not-found", errs.ErrNotFound, "NOT_FOUND", "", false, false},
		{"wrapped-not-found", fmt.Errorf("resend survey: %w", errs.ErrNotFound), "NOT_FOUND", "", false, false},
		{"rate-limited", errs.New(errs.RateLimited, "too many requests"), "RATE_LIMITED", "", false, false},
		{"internal-domain", errs.New(errs.Internal, "boom"), "INTERNAL", "internal error", true, false},
		{"plain", errors.New("pq: relation surveys does not exist"), "INTERNAL", "internal error", true, false},
		{"unavailable", errors.New("dial tcp: connection refused"), "INTERNAL", "the service is temporarily unavailable, please retry", false, true},
		{"gqlgen-client-error", gqlerror.Errorf("could not read request body"), "BAD_USER_INPUT", "could not read request body", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := presenter{log: slog.New(slog.NewTextHandler(&buf, nil)), unavailable: func(error) bool { return c.unavail }}
			out := p.present(context.Background(), c.err)
			if out.Extensions["code"] != c.code {
				t.Fatalf("code %v, want %s", out.Extensions["code"], c.code)
			}
			want := c.message
			if want == "" {
				want = errs.As(c.err).Message
			}
			if out.Message != want {
				t.Fatalf("message %q, want %q", out.Message, want)
			}
			if logged := strings.Contains(buf.String(), "internal error"); logged != c.logged {
				t.Fatalf("logged %v: %s", logged, buf.String())
			}
		})
	}
	out := presenter{log: slog.Default()}.present(context.Background(), errs.Validation(map[string]string{"survey_delay_hours": "must be 1-72"}))
	if f, _ := out.Extensions["fields"].(map[string]string); f["survey_delay_hours"] == "" {
		t.Fatalf("fields not passed: %v", out.Extensions)
	}
}
