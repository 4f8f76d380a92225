package main

import (
	"strings"
	"testing"
)

// gen mimics gqlgen's output: Row lists and Edge lists, where an Edge's
// node is a Node whose resolver runs concurrently (a dataloader's).
const gen = `package graph

func (ec *executionContext) _Row(ctx context.Context, sel ast.SelectionSet, obj *Row) graphql.Marshaler {
	deferred := graphql.NewDeferredGroup(ctx)
	out := ec._Row_key(ctx, sel, obj)
	if n := len(deferred.Defers); n > 0 {
		ec.ProcessDeferredGroup(deferred)
	}
	return out
}

func (ec *executionContext) _Row_key(ctx context.Context, sel ast.SelectionSet, obj *Row) graphql.Marshaler {
	return graphql.MarshalString(obj.Key)
}

func (ec *executionContext) _Row_count(ctx context.Context, field graphql.CollectedField, obj *Row) (ret graphql.Marshaler) {
	return graphql.ResolveField(ctx, ec.OperationContext, field,
		func(ctx context.Context, field graphql.CollectedField) (*graphql.FieldContext, error) {
			return ec.fieldContext_Row_count(ctx, field)
		},
		func(ctx context.Context) (any, error) {
			return obj.Count, nil
		},
		nil,
		func(ctx context.Context, selections ast.SelectionSet, v int) graphql.Marshaler {
			return ec.marshalNInt2int(ctx, selections, v)
		},
		true, true)
}

func (ec *executionContext) _Row_secret(ctx context.Context, field graphql.CollectedField, obj *Row) (ret graphql.Marshaler) {
	return graphql.ResolveField(ctx, ec.OperationContext, field,
		func(ctx context.Context, field graphql.CollectedField) (*graphql.FieldContext, error) {
			return ec.fieldContext_Row_secret(ctx, field)
		},
		func(ctx context.Context) (any, error) {
			return obj.Secret, nil
		},
		func(ctx context.Context, next graphql.Resolver) graphql.Resolver {
			return ec.directives.Auth(ctx, obj, next)
		},
		func(ctx context.Context, selections ast.SelectionSet, v int) graphql.Marshaler {
			return ec.marshalNInt2int(ctx, selections, v)
		},
		true, true)
}

func (ec *executionContext) _Row_edge(ctx context.Context, field graphql.CollectedField, obj *Row) (ret graphql.Marshaler) {
	return graphql.ResolveField(ctx, ec.OperationContext, field,
		func(ctx context.Context, field graphql.CollectedField) (*graphql.FieldContext, error) {
			return ec.fieldContext_Row_edge(ctx, field)
		},
		func(ctx context.Context) (any, error) {
			return obj.Edge, nil
		},
		nil,
		func(ctx context.Context, selections ast.SelectionSet, v Edge) graphql.Marshaler {
			return ec.marshalNEdge(ctx, selections, v)
		},
		true, true)
}

func (ec *executionContext) marshalNInt2int(ctx context.Context, sel ast.SelectionSet, v int) graphql.Marshaler {
	return graphql.MarshalInt(v)
}

func (ec *executionContext) _Edge(ctx context.Context, sel ast.SelectionSet, obj *Edge) graphql.Marshaler {
	return ec.marshalNNode(ctx, sel, obj.Node)
}

func (ec *executionContext) marshalNNode(ctx context.Context, sel ast.SelectionSet, v *Node) graphql.Marshaler {
	return ec._Node(ctx, sel, v)
}

func (ec *executionContext) _Node(ctx context.Context, sel ast.SelectionSet, obj *Node) graphql.Marshaler {
	deferred := graphql.NewDeferredGroup(ctx)
	out.ResolveConcurrently(ec.OperationContext, &deferred, 0, true, true, func(ctx context.Context) graphql.Marshaler {
		return ec._Node_loaded(ctx, field, obj)
	})
	return out
}

func (ec *executionContext) marshalNRow(ctx context.Context, sel ast.SelectionSet, v Row) graphql.Marshaler {
	return ec._Row(ctx, sel, &v)
}

func (ec *executionContext) marshalNRowᚕ(ctx context.Context, sel ast.SelectionSet, v []Row) graphql.Marshaler {
	ret := graphql.MarshalSliceConcurrently(ctx, len(v), 100, false, func(ctx context.Context, i int) graphql.Marshaler {
		return ec.marshalNRow(ctx, sel, v[i])
	})
	return ret
}

func (ec *executionContext) marshalNEdge(ctx context.Context, sel ast.SelectionSet, v Edge) graphql.Marshaler {
	return ec._Edge(ctx, sel, &v)
}

func (ec *executionContext) marshalNEdgeᚕ(ctx context.Context, sel ast.SelectionSet, v []Edge) graphql.Marshaler {
	ret := graphql.MarshalSliceConcurrently(ctx, len(v), 100, false, func(ctx context.Context, i int) graphql.Marshaler {
		return ec.marshalNEdge(ctx, sel, v[i])
	})
	return ret
}
`

func TestRewrite(t *testing.T) {
	out, err := rewrite("gen.go", []byte(gen), []string{"Row"})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if !strings.Contains(s, "ret := marshalSliceInOrder(ctx, len(v), false, func(ctx context.Context, i int) graphql.Marshaler {\n\t\treturn ec.marshalNRow(") ||
		!strings.Contains(s, "ret := graphql.MarshalSliceConcurrently(ctx, len(v), 100, false, func(ctx context.Context, i int) graphql.Marshaler {\n\t\treturn ec.marshalNEdge(") {
		t.Fatalf("rewritten:\n%s", s)
	}
	// Row's deferred group stays empty, Node's may not.
	if !strings.Contains(s, "Row) graphql.Marshaler {\n\tvar deferred graphql.DeferredGroup\n") ||
		!strings.Contains(s, "Node) graphql.Marshaler {\n\tdeferred := graphql.NewDeferredGroup(ctx)\n") {
		t.Fatalf("deferred groups:\n%s", s)
	}
	// Row's count marshals its struct field directly; a field behind a
	// directive keeps its middleware, an object field its context.
	if !strings.Contains(s, "obj *Row) (ret graphql.Marshaler) {\n\treturn ec.marshalNInt2int(ctx, field.Selections, obj.Count)\n}") ||
		strings.Contains(s, "obj.Secret)") || strings.Contains(s, "obj.Edge)") || strings.Count(s, "graphql.ResolveField(") != 2 {
		t.Fatalf("plain fields:\n%s", s)
	}
	// Running again changes nothing: go generate twice is a no-op.
	again, err := rewrite("gen.go", out, []string{"Row"})
	if err != nil || string(again) != s {
		t.Fatalf("second rewrite: %v\n%s", err, again)
	}
}

func TestRewriteRefuses(t *testing.T) {
	for _, c := range []struct{ types, want string }{
		// Edge reads no resolver itself, but its node does: marshalling
		// edges in order would load the nodes one by one.
		{"Row,Edge", "Edge resolves fields concurrently (_Node)"},
		{"Node", "Node resolves fields concurrently"},
		{"Row,Missing", "no list of Missing"},
	} {
		_, err := rewrite("gen.go", []byte(gen), strings.Split(c.types, ","))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.types, err, c.want)
		}
	}
}
