package graph

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// TestMarshalSliceInOrder: like graphql.MarshalSliceConcurrently, every
// element sees its own index, and a panicking element becomes Null with
// an error on its path while the others are still marshalled.
func TestMarshalSliceInOrder(t *testing.T) {
	recovered := errors.New("internal error")
	ctx := graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter,
		func(context.Context, any) error { return recovered })
	ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Field: graphql.CollectedField{Field: &ast.Field{Alias: "trend"}}})

	got := marshalSliceInOrder(ctx, 3, false, func(ctx context.Context, i int) graphql.Marshaler {
		if i == 1 {
			panic("boom")
		}
		return graphql.MarshalInt(*graphql.GetFieldContext(ctx).Index * 10)
	})
	var b strings.Builder
	got.MarshalGQL(&b)
	if b.String() != "[0,null,20]" {
		t.Fatalf("marshalled %s", b.String())
	}
	errs := graphql.GetErrors(ctx)
	if len(errs) != 1 || errs[0].Message != recovered.Error() || errs[0].Path.String() != "trend[1]" {
		t.Fatalf("errors %v", errs)
	}

	// With omitPanicHandler the panic is the caller's.
	defer func() {
		if recover() == nil {
			t.Fatal("omitPanicHandler recovered the panic")
		}
	}()
	marshalSliceInOrder(ctx, 1, true, func(context.Context, int) graphql.Marshaler { panic("boom") })
}
