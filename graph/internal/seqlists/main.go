// Command seqlists runs after gqlgen (go generate, graph/resolver.go) and
// makes the generated list marshallers of the named object types marshal
// their elements in order on the calling goroutine.
//
// gqlgen marshals every list of objects with graphql.MarshalSliceConcurrently,
// one goroutine per element, so that a child field's resolver (a dataloader
// call) runs beside its siblings' and batches with them. For an object whose
// fields are all plain struct reads that buys nothing: a year's weekly trend
// and agent breakdown start ~120 goroutines per request, each growing its
// stack in CollectFields, about 15 % of the Go CPU of an analytics request.
// gqlgen has no option for this (its template always emits the concurrent
// call), hence this rewrite of its output.
//
// Each listed type must have a list marshaller, and nothing its marshaller
// reaches in the generated code may resolve a field concurrently
// (ResolveConcurrently, ResolveRootConcurrently): such a type's lists must
// stay concurrent so its resolvers still batch. Otherwise seqlists fails and
// go generate with it.
//
// The listed types' fields that only read a struct field into a scalar or
// an enum (no resolver, no directive) call their marshaller directly
// instead of graphql.ResolveField (plainField says what that leaves out).
//
// It also gives the object marshallers that cannot defer a field (no
// ResolveConcurrently call passes their deferred group) a zero group
// instead of graphql.NewDeferredGroup's, which allocates four times per
// object, per list element: about 8 % of an analytics request's
// allocations.
//
//	go run ./internal/seqlists -types TrendPoint,BreakdownRow generated.go
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"sort"
	"strings"
)

const (
	concurrentSlice = "MarshalSliceConcurrently" // graphql.MarshalSliceConcurrently
	// inOrder is the replacement, graph/slices.go; it takes the same
	// arguments but the worker limit.
	inOrder = "marshalSliceInOrder"
)

func main() {
	types := flag.String("types", "", "comma-separated object types whose lists marshal in order")
	flag.Parse()
	if flag.NArg() != 1 || *types == "" {
		fmt.Fprintln(os.Stderr, "usage: seqlists -types A,B generated.go")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), strings.Split(*types, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "seqlists:", err)
		os.Exit(1)
	}
}

func run(path string, types []string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := rewrite(path, src, types)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if bytes.Equal(out, src) {
		return nil
	}
	return os.WriteFile(path, out, 0o644)
}

// listCall is one list marshaller's call of MarshalSliceConcurrently (or,
// already rewritten, of marshalSliceInOrder) and its element type.
type listCall struct {
	call *ast.CallExpr
	elem string // the object type, "" when the element is not one
}

// rewrite returns src with the listed types' list marshallers calling
// inOrder, or an error naming a listed type that does not qualify.
func rewrite(name string, src []byte, types []string) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}

	// The generated code is methods of executionContext calling each
	// other as ec.name(...): its call graph, and which methods start
	// concurrent field work themselves.
	funcs := map[string]*ast.FuncDecl{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv != nil && fd.Body != nil {
			funcs[fd.Name.Name] = fd
		}
	}
	calls := map[string][]string{}
	concurrent := map[string]bool{}
	var lists []listCall
	for name, fd := range funcs {
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch sel := call.Fun.(type) {
			case *ast.SelectorExpr:
				switch m := sel.Sel.Name; {
				case m == "ResolveConcurrently" || m == "ResolveRootConcurrently":
					concurrent[name] = true
				case m == concurrentSlice && isIdent(sel.X, "graphql"):
					lists = append(lists, listCall{call, elementType(call, funcs)})
				case isIdent(sel.X, "ec") && funcs[m] != nil:
					calls[name] = append(calls[name], m)
				}
			case *ast.Ident:
				if sel.Name == inOrder {
					lists = append(lists, listCall{call, elementType(call, funcs)})
				}
			}
			return true
		})
	}

	var edits []edit
	for _, t := range types {
		if bad := reachesConcurrent("_"+t, calls, concurrent); bad != "" {
			return nil, fmt.Errorf("%s resolves fields concurrently (%s): its lists must stay concurrent so its resolvers batch; take it off the -types list", t, bad)
		}
		found := false
		for _, l := range lists {
			if l.elem != t {
				continue
			}
			found = true
			if sel, ok := l.call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == concurrentSlice {
				if len(l.call.Args) != 5 {
					return nil, fmt.Errorf("%s: %s with %d arguments, want 5 (ctx, n, workerLimit, omitPanicHandler, marshal): gqlgen changed, update seqlists", fset.Position(l.call.Pos()), concurrentSlice, len(l.call.Args))
				}
				off := func(p token.Pos) int { return fset.Position(p).Offset }
				edits = append(edits,
					edit{off(l.call.Fun.Pos()), off(l.call.Fun.End()), inOrder},
					edit{off(l.call.Args[2].Pos()), off(l.call.Args[3].Pos()), ""}) // the worker limit
			}
		}
		if !found {
			return nil, fmt.Errorf("no list of %s in the schema: take it off the -types list", t)
		}
	}

	// The listed types' fields that read a struct field into a scalar or
	// enum marshal it directly: graphql.ResolveField builds a field
	// context, closures and the middleware chain, boxes the value twice
	// and defers a recover, about ten allocations per field of each list
	// element (half of an analytics request's), for a value read from
	// memory.
	for _, t := range types {
		for name, fd := range funcs {
			if !strings.HasPrefix(name, "_"+t+"_") {
				continue
			}
			if ret, text := plainField(fd, funcs, calls); ret != nil {
				off := func(p token.Pos) int { return fset.Position(p).Offset }
				edits = append(edits, edit{off(ret.Pos()), off(ret.End()), text})
			}
		}
	}

	// Every object marshaller starts with graphql.NewDeferredGroup(ctx),
	// which builds the object's path, a FieldSet and a map (four
	// allocations per object, per list element) for the fields a
	// ResolveConcurrently call may defer. Where nothing can add to the
	// group (no &deferred), a zero group is the same: its Defers stay
	// empty and ProcessDeferredGroup never runs.
	for _, fd := range funcs {
		if a := emptyDeferredGroup(fd); a != nil {
			edits = append(edits, edit{fset.Position(a.Pos()).Offset, fset.Position(a.End()).Offset, "var deferred graphql.DeferredGroup"})
		}
	}

	sort.Slice(edits, func(i, j int) bool { return edits[i].from > edits[j].from })
	out := slices.Clone(src)
	for _, e := range edits {
		out = slices.Concat(out[:e.from], []byte(e.text), out[e.to:])
	}
	return format.Source(out)
}

// emptyDeferredGroup returns fd's statement deferred :=
// graphql.NewDeferredGroup(ctx) if fd uses the group only to read
// len(deferred.Defers) and to pass it to ec.ProcessDeferredGroup, so it
// stays empty; else nil.
func emptyDeferredGroup(fd *ast.FuncDecl) *ast.AssignStmt {
	var decl *ast.AssignStmt
	uses, harmless := 0, 0
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if len(n.Lhs) == 1 && isIdent(n.Lhs[0], "deferred") && n.Tok == token.DEFINE && len(n.Rhs) == 1 {
				if call, ok := n.Rhs[0].(*ast.CallExpr); ok {
					if sel, ok := call.Fun.(*ast.SelectorExpr); ok && isIdent(sel.X, "graphql") && sel.Sel.Name == "NewDeferredGroup" {
						decl = n
						return false
					}
				}
			}
		case *ast.SelectorExpr: // deferred.Defers
			if isIdent(n.X, "deferred") && n.Sel.Name == "Defers" {
				harmless++
			}
		case *ast.CallExpr: // ec.ProcessDeferredGroup(deferred)
			if ecMethod(n) == "ProcessDeferredGroup" && len(n.Args) == 1 && isIdent(n.Args[0], "deferred") {
				harmless++
			}
		case *ast.Ident:
			if n.Name == "deferred" {
				uses++
			}
		}
		return true
	})
	if decl == nil || uses != harmless {
		return nil
	}
	return decl
}

// plainField returns the result expression of a field marshaller fd whose
// body is gqlgen's
//
//	return graphql.ResolveField(ctx, ec.OperationContext, field, fc,
//		func(ctx context.Context) (any, error) { return obj.X, nil },
//		nil, func(..., v T) graphql.Marshaler { return ec.marshalM(ctx, selections, v) }, true, nonNull)
//
// with no directive (the nil middleware) and a marshaller marshalM that
// calls no other generated method (a scalar's or an enum's, never an
// object's, whose fields would need this field's context as their
// parent), and the direct call that replaces it:
// ec.marshalM(ctx, field.Selections, obj.X). Otherwise nil.
//
// What the direct call does not do, and why that is safe here: no field
// context, so field middleware (the server has none: no AroundFields)
// does not see these fields, and an error a marshaller reports (a float
// that is NaN; our figures are ratios of integers) is placed at the
// object's path rather than the field's; no recover, so a panic in the
// marshaller nulls the list element (marshalSliceInOrder recovers) rather
// than the field; no null check, but obj.X is a struct field and a
// non-null scalar of a Go value type cannot be null, while the O (nullable)
// marshallers handle nil themselves.
func plainField(fd *ast.FuncDecl, funcs map[string]*ast.FuncDecl, calls map[string][]string) (ast.Expr, string) {
	if len(fd.Body.List) != 1 {
		return nil, ""
	}
	ret, ok := fd.Body.List[0].(*ast.ReturnStmt)
	if !ok || len(ret.Results) != 1 {
		return nil, ""
	}
	call, ok := ret.Results[0].(*ast.CallExpr)
	if !ok || len(call.Args) != 9 {
		return nil, ""
	}
	if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || !isIdent(sel.X, "graphql") || sel.Sel.Name != "ResolveField" {
		return nil, ""
	}
	if !isIdent(call.Args[5], "nil") || !isIdent(call.Args[2], "field") {
		return nil, ""
	}
	// The resolver: return obj.X, nil.
	read := onlyReturn(call.Args[4], 2)
	if read == nil || !isIdent(read[1], "nil") {
		return nil, ""
	}
	x, ok := read[0].(*ast.SelectorExpr)
	if !ok || !isIdent(x.X, "obj") {
		return nil, ""
	}
	// The marshaller: return ec.marshalM(ctx, selections, v).
	mr := onlyReturn(call.Args[6], 1)
	if mr == nil {
		return nil, ""
	}
	m := ecMethod(mr[0])
	mc, _ := mr[0].(*ast.CallExpr)
	if m == "" || funcs[m] == nil || len(calls[m]) > 0 || len(mc.Args) != 3 ||
		!isIdent(mc.Args[0], "ctx") || !isIdent(mc.Args[1], "selections") || !isIdent(mc.Args[2], "v") {
		return nil, ""
	}
	return call, "ec." + m + "(ctx, field.Selections, obj." + x.Sel.Name + ")"
}

// onlyReturn returns the n results of a function literal whose body is one
// return statement, else nil.
func onlyReturn(e ast.Expr, n int) []ast.Expr {
	lit, ok := e.(*ast.FuncLit)
	if !ok || len(lit.Body.List) != 1 {
		return nil
	}
	ret, ok := lit.Body.List[0].(*ast.ReturnStmt)
	if !ok || len(ret.Results) != n {
		return nil
	}
	return ret.Results
}

type edit struct {
	from, to int
	text     string
}

// elementType is the object type a list marshaller's element function
// marshals: the marshal callback returns ec.marshalX(...), which calls
// ec._Type. "" for elements that are not objects (lists of lists).
func elementType(call *ast.CallExpr, funcs map[string]*ast.FuncDecl) string {
	if len(call.Args) == 0 {
		return ""
	}
	lit, ok := call.Args[len(call.Args)-1].(*ast.FuncLit)
	if !ok {
		return ""
	}
	var elem string
	ast.Inspect(lit.Body, func(n ast.Node) bool {
		if ret, ok := n.(*ast.ReturnStmt); ok && len(ret.Results) == 1 {
			if m := ecMethod(ret.Results[0]); funcs[m] != nil {
				elem = objectCalled(funcs[m])
			}
		}
		return elem == ""
	})
	return elem
}

// objectCalled is the object type whose marshaller (ec._Type, not a
// field's ec._Type_field) fd calls.
func objectCalled(fd *ast.FuncDecl) string {
	var obj string
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		if m := ecMethod(n); strings.HasPrefix(m, "_") && !strings.Contains(m[1:], "_") {
			obj = m[1:]
		}
		return obj == ""
	})
	return obj
}

// ecMethod is the method name of a call ec.name(...), else "".
func ecMethod(n ast.Node) string {
	call, ok := n.(*ast.CallExpr)
	if !ok {
		return ""
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || !isIdent(sel.X, "ec") {
		return ""
	}
	return sel.Sel.Name
}

// reachesConcurrent returns a method that resolves fields concurrently and
// is reachable from start in the call graph, or "".
func reachesConcurrent(start string, calls map[string][]string, concurrent map[string]bool) string {
	seen := map[string]bool{start: true}
	queue := []string{start}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		if concurrent[m] {
			return m
		}
		for _, c := range calls[m] {
			if !seen[c] {
				seen[c] = true
				queue = append(queue, c)
			}
		}
	}
	return ""
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}
