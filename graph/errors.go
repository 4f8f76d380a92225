package graph

import (
	"context"
	"errors"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/csat/csat/errs"
)

// GraphQL error codes (extensions.code). Protocol errors keep gqlgen's own
// codes: GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED (also a query too
// deep), COMPLEXITY_LIMIT_EXCEEDED, PERSISTED_QUERY_NOT_FOUND.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeNotFound        = "NOT_FOUND"
	CodeRateLimited     = "RATE_LIMITED"
	CodeInternal        = "INTERNAL"
)

// codeOf maps a domain error code to its GraphQL code. Every client
// mistake about input or state (malformed, out of range, conflicting with
// the survey's status, an expired link) is BAD_USER_INPUT; the domain code
// is kept in extensions.reason.
func codeOf(c errs.Code) string {
	switch c {
	case errs.Unauthenticated:
		return CodeUnauthenticated
	case errs.Forbidden:
		return CodeForbidden
	case errs.NotFound:
		return CodeNotFound
	case errs.RateLimited:
		return CodeRateLimited
	case errs.Invalid, errs.Unprocessable, errs.Conflict, errs.Gone, errs.TooLarge:
		return CodeBadUserInput
	}
	return CodeInternal
}

// presenter turns every error into a GraphQL error with extensions.code.
// Unexpected errors are logged and shown as a generic message.
type presenter struct {
	log         *slog.Logger
	unavailable func(error) bool
}

func (p presenter) present(ctx context.Context, err error) *gqlerror.Error {
	out := graphql.DefaultErrorPresenter(ctx, err)
	if e := errs.As(err); e != nil && e.Code != errs.Internal && e.Code != errs.Unavailable {
		out.Message = e.Message
		out.Extensions = map[string]any{"code": codeOf(e.Code), "reason": string(e.Code)}
		if len(e.Fields) > 0 {
			out.Extensions["fields"] = e.Fields
		}
		return out
	}
	// gqlgen's own errors about the request (parsing, validation, limits,
	// an unreadable body) are client errors; most already carry a code.
	var ge *gqlerror.Error
	if errors.As(err, &ge) && ge.Err == nil {
		if out.Extensions["code"] == nil {
			out.Extensions = map[string]any{"code": CodeBadUserInput}
		}
		return out
	}
	if p.unavailable != nil && p.unavailable(err) || errs.CodeOf(err) == errs.Unavailable {
		out.Message = "the service is temporarily unavailable, please retry"
		out.Extensions = map[string]any{"code": CodeInternal, "reason": string(errs.Unavailable)}
		return out
	}
	p.log.ErrorContext(ctx, "graphql internal error", "path", out.Path.String(), "err", err)
	out.Message = "internal error"
	out.Extensions = map[string]any{"code": CodeInternal}
	return out
}

// recoverPanic logs a resolver panic and answers a generic internal error.
func (p presenter) recoverPanic(ctx context.Context, v any) error {
	p.log.ErrorContext(ctx, "graphql resolver panic", "panic", v)
	return errs.New(errs.Internal, "internal error")
}
