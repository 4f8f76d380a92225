package survey

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/tenants"
)

// Order is a survey list's sort order: a db.Sort* key, newest (or
// largest) first when Desc. The zero Order is creation order, oldest first;
// NewestFirst is the default lists use.
type Order struct {
	Sort string
	Desc bool
}

// NewestFirst is creation order, newest first.
var NewestFirst = Order{Sort: db.SortCreated, Desc: true}

// PageArgs select one page of a keyset-paged list, Relay style: First rows
// after After or, when Last is set, the Last rows before Before. Both
// cursors bound the page in either direction.
type PageArgs struct {
	First  *int
	After  string
	Last   *int
	Before string
	Order  Order
	// SkipBehind: the caller does not use the flag of the side behind the
	// page's starting cursor (HasPrevious reading forward after After,
	// HasNext reading backward before Before), which costs a query of its
	// own; it is left false. The flag of the side read towards is free.
	SkipBehind bool
	// Columns are the survey columns the caller shows (nil: every shown
	// column, db.ShownColumns); the rows' other fields stay zero.
	Columns []string
}

// Connection is one page of surveys with an opaque cursor per row.
type Connection struct {
	Surveys     []db.Survey
	Cursors     []string
	HasNext     bool
	HasPrevious bool
	Filter      db.SurveyFilter // what the page was filtered by, for a total count
}

// cursor is what an opaque cursor holds: the order it belongs to and the
// position of a row in it.
type cursor struct {
	Sort  string `json:"s"`
	Desc  bool   `json:"d,omitempty"`
	Value string `json:"v,omitempty"`
	ID    string `json:"i"`
}

// encodeCursor writes by hand, byte for byte, what json.Marshal makes of
// the cursor (decodeCursor still unmarshals it; strings are quoted by
// appendString, the REST page's encoder): a page encodes one per row, and
// reflection was ~5 % of a GraphQL page's Go CPU. The buffers stay on the
// stack for usual cursors; the string is the one allocation.
func encodeCursor(o Order, sv *db.Survey) string {
	var js, enc [192]byte
	b := append(js[:0], `{"s":`...)
	b = appendString(b, o.Sort)
	if o.Desc {
		b = append(b, `,"d":true`...)
	}
	if v := db.KeyValue(o.Sort, sv); v != "" {
		b = append(b, `,"v":`...)
		b = appendString(b, v)
	}
	b = append(b, `,"i":`...)
	b = appendString(b, sv.ID)
	b = append(b, '}')
	return string(base64.RawURLEncoding.AppendEncode(enc[:0], b))
}

// decodeCursor parses a cursor of order o; a cursor of another order or a
// malformed one is bad input, never a query.
func decodeCursor(s string, o Order) (*db.KeyPos, error) {
	if s == "" {
		return nil, nil
	}
	bad := errs.New(errs.Invalid, "invalid cursor: use a cursor this list returned with the same orderBy")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 512 {
		return nil, bad
	}
	var c cursor
	if json.Unmarshal(b, &c) != nil || c.Sort != o.Sort || c.Desc != o.Desc || c.ID == "" || !utf8.ValidString(c.ID) {
		return nil, bad
	}
	if !validKeyValue(o.Sort, c.Value) {
		return nil, bad
	}
	return &db.KeyPos{Value: c.Value, ID: c.ID}, nil
}

func validKeyValue(sort, v string) bool {
	switch sort {
	case db.SortCreated:
		return v == ""
	case db.SortSent, db.SortResponded:
		if v == "-infinity" {
			return true
		}
		_, err := time.Parse(time.RFC3339Nano, v)
		return err == nil
	case db.SortRating:
		n, err := strconv.Atoi(v)
		return err == nil && n >= 0 && n <= 5
	}
	return false
}

func validOrder(o Order) bool {
	return slices.Contains([]string{db.SortCreated, db.SortSent, db.SortResponded, db.SortRating}, o.Sort)
}

func pageSize(name string, n *int) (int, error) {
	if n == nil {
		return 0, nil
	}
	if *n < 0 || *n > MaxLimit {
		return 0, errs.New(errs.Invalid, "%s must be from 0 to %d", name, MaxLimit)
	}
	return *n, nil
}

// PageSurveys returns one keyset page of the context tenant's surveys matching f.
// Cursors are positions, not offsets: rows inserted or removed elsewhere in
// the list never shift a page, and reading a page deep in millions of rows
// costs the same as the first.
func (s *Service) PageSurveys(ctx context.Context, f db.SurveyFilter, a PageArgs) (Connection, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeRead)
	if err != nil {
		return Connection{}, err
	}
	if err := ValidateFilter(f); err != nil {
		return Connection{}, err
	}
	if !validOrder(a.Order) {
		return Connection{}, errs.New(errs.Invalid, "unknown sort order %q", strings.ToUpper(a.Order.Sort))
	}
	k := db.Keyset{Sort: a.Order.Sort, Desc: a.Order.Desc, Columns: a.Columns}
	for _, c := range a.Columns {
		if !db.KnownColumn(c) {
			return Connection{}, fmt.Errorf("page surveys: unknown column %q", c)
		}
	}
	if k.Limit, err = pageSize("first", a.First); err != nil {
		return Connection{}, err
	}
	if a.Last != nil {
		if k.Limit, err = pageSize("last", a.Last); err != nil {
			return Connection{}, err
		}
		k.FromEnd = true
	} else if a.First == nil {
		return Connection{}, errs.New(errs.Invalid, "first or last is required")
	}
	if k.After, err = decodeCursor(a.After, a.Order); err != nil {
		return Connection{}, err
	}
	if k.Before, err = decodeCursor(a.Before, a.Order); err != nil {
		return Connection{}, err
	}
	c := Connection{Filter: f}
	err = s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) error {
		rows, more, err := db.PageSurveys(ctx, idb, tenantID, f, k)
		if err != nil {
			return err
		}
		c.Surveys = rows
		// The side the page was read towards is known from the extra row;
		// the side behind its starting cursor takes one index probe.
		if k.FromEnd {
			c.HasPrevious = more
			if k.Before != nil && !a.SkipBehind {
				c.HasNext, err = db.SurveysBeyond(ctx, idb, tenantID, f, k, *k.Before, true)
			}
		} else {
			c.HasNext = more
			if k.After != nil && !a.SkipBehind {
				c.HasPrevious, err = db.SurveysBeyond(ctx, idb, tenantID, f, k, *k.After, false)
			}
		}
		return err
	})
	if err != nil {
		return Connection{}, err
	}
	c.Cursors = make([]string, len(c.Surveys))
	for i := range c.Surveys {
		c.Cursors[i] = encodeCursor(a.Order, &c.Surveys[i])
	}
	return c, nil
}

// Count returns how many of the context tenant's surveys match f.
func (s *Service) Count(ctx context.Context, f db.SurveyFilter) (int, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeRead)
	if err != nil {
		return 0, err
	}
	if err := ValidateFilter(f); err != nil {
		return 0, err
	}
	var n int
	err = s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
		n, err = db.CountSurveys(ctx, idb, tenantID, f)
		return err
	})
	return n, err
}
