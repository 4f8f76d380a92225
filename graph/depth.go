package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// depthLimit refuses operations nested deeper than Max fields (fragments
// counted where they are spread). Our own types nest at most four levels;
// the limit leaves room for the introspection query GraphiQL sends.
type depthLimit struct{ Max int }

var _ interface {
	graphql.OperationContextMutator
	graphql.HandlerExtension
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	op := oc.Doc.Operations.ForName(oc.OperationName)
	if op == nil {
		return nil
	}
	if n := selectionDepth(op.SelectionSet, oc.Doc.Fragments, map[string]bool{}); n > d.Max {
		err := gqlerror.Errorf("operation is nested %d levels deep, more than the limit of %d", n, d.Max)
		errcode.Set(err, errcode.ValidationFailed)
		return err
	}
	return nil
}

func selectionDepth(set ast.SelectionSet, frags ast.FragmentDefinitionList, seen map[string]bool) int {
	deepest := 0
	for _, sel := range set {
		d := 0
		switch s := sel.(type) {
		case *ast.Field:
			d = 1 + selectionDepth(s.SelectionSet, frags, seen)
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, frags, seen)
		case *ast.FragmentSpread:
			f := frags.ForName(s.Name)
			if f == nil || seen[s.Name] { // validation refuses cycles; be safe anyway
				continue
			}
			seen[s.Name] = true
			d = selectionDepth(f.SelectionSet, frags, seen)
			delete(seen, s.Name)
		}
		deepest = max(deepest, d)
	}
	return deepest
}

// noIntrospection refuses __schema and __type while introspection is off
// (GRAPHQL_INTROSPECTION=false), as a validation error rather than the
// executor's bare "introspection disabled" field error.
type noIntrospection struct{}

func (noIntrospection) ExtensionName() string                   { return "NoIntrospection" }
func (noIntrospection) Validate(graphql.ExecutableSchema) error { return nil }

func (noIntrospection) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	op := oc.Doc.Operations.ForName(oc.OperationName)
	if op != nil && introspects(op.SelectionSet, oc.Doc.Fragments) {
		err := gqlerror.Errorf("introspection is disabled on this server")
		errcode.Set(err, errcode.ValidationFailed)
		return err
	}
	return nil
}

func introspects(set ast.SelectionSet, frags ast.FragmentDefinitionList) bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				return true
			}
		case *ast.InlineFragment:
			if introspects(s.SelectionSet, frags) {
				return true
			}
		case *ast.FragmentSpread:
			if f := frags.ForName(s.Name); f != nil && introspects(f.SelectionSet, frags) {
				return true
			}
		}
	}
	return false
}
