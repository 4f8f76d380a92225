package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
)

// marshalSliceInOrder is graphql.MarshalSliceConcurrently without the
// goroutines: each element gets its own FieldContext with its Index and a
// panic becomes that element's Null plus an error (unless
// omitPanicHandler), but the elements are marshalled one after another
// on the caller's goroutine.
//
// go generate (internal/seqlists) makes the list marshallers of the types
// named in graph/resolver.go call it: objects that only read struct fields,
// where a goroutine per element (a weekly trend's 53 points, an agent
// breakdown's 60 rows) costs more than marshalling the element.
func marshalSliceInOrder(ctx context.Context, n int, omitPanicHandler bool, marshal func(ctx context.Context, i int) graphql.Marshaler) graphql.Array {
	ret := make(graphql.Array, n)
	// One allocation each for every element's index and field context.
	index := make([]int, n)
	fcs := make([]graphql.FieldContext, n)
	for i := range n {
		index[i] = i
		fcs[i].Index = &index[i]
		ctx := graphql.WithFieldContext(ctx, &fcs[i])
		if omitPanicHandler {
			ret[i] = marshal(ctx, i)
		} else {
			ret[i] = marshalRecovered(ctx, i, marshal)
		}
	}
	return ret
}

// marshalRecovered marshals element i, turning a panic into Null and an
// error on its path, as the concurrent marshaller does.
func marshalRecovered(ctx context.Context, i int, marshal func(ctx context.Context, i int) graphql.Marshaler) (m graphql.Marshaler) {
	defer func() {
		if r := recover(); r != nil {
			graphql.AddError(ctx, graphql.Recover(ctx, r))
			m = graphql.Null
		}
	}()
	return marshal(ctx, i)
}
