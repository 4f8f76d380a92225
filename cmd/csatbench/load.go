package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"
)

// surveyColumns is the COPY column list; row writes them in this order.
const surveyColumns = `tenant_id, id, conversation_id, contact_email, contact_name, agent_id, team_id,
	channel, locale, status, rating, feedback, flagged, token_hash, resolved_at, scheduled_for,
	sent_at, expires_at, responded_at, created_at, updated_at`

// benchToken is the public link token of a loaded survey: deterministic, so
// the drivers can answer surveys without reading tokens back. It has the
// shape survey.parseToken accepts (tenant id, a dot, >= 22 characters).
func benchToken(tenantID string, i int) string {
	return tenantID + ".bench" + fmt.Sprintf("%017d", i)
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// surveyID mirrors secret.ID for a given creation time, so loaded ids sort
// by creation like real ones (the list orders by id).
func surveyID(r *rand.Rand, at time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(at.UnixMilli())<<16)
	binary.BigEndian.PutUint64(b[8:], r.Uint64())
	b[6], b[7] = byte(r.Uint32()), byte(r.Uint32())
	return "csat_" + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// tenantData describes the surveys loaded for one tenant.
type tenantData struct {
	ID   string
	N    int // surveys
	Live int // the first Live rows are answerable (sent or completed, link valid for days)
}

var (
	channels = []string{"email", "email", "email", "chat", "chat", "phone", "whatsapp"}
	ratings  = []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4, 4, 3, 3, 2, 1, 1} // skewed high
	comments = []string{"Quick and friendly, thanks!", "Solved my problem.", "Took a while but got there.",
		"Agent did not understand the issue.", "Great service as always."}
)

// rowWriter streams one tenant's surveys in COPY text format, oldest first
// (so the time-ordered ids append to the primary key index).
type rowWriter struct {
	t      tenantData
	lo, hi int // rows [lo, hi) of the tenant
	now    time.Time
	r      *rand.Rand
	buf    []byte
}

func (w *rowWriter) writeTo(out *bufio.Writer) error {
	year := 365 * 24 * time.Hour
	for i := w.hi - 1; i >= w.lo; i-- {
		// Row i is i/N of the way back over the year; the newest Live rows
		// are in the last six days so their links are still valid.
		var resolved time.Time
		switch {
		case i < w.t.Live:
			resolved = w.now.Add(-time.Duration(float64(6*24*time.Hour) * float64(i+1) / float64(w.t.Live+1)))
		default:
			resolved = w.now.Add(-8*24*time.Hour - time.Duration(float64(year-8*24*time.Hour)*float64(i)/float64(w.t.N)))
		}
		w.buf = w.row(w.buf[:0], i, resolved)
		if _, err := out.Write(w.buf); err != nil {
			return err
		}
	}
	return nil
}

func appendTime(b []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(b, "2006-01-02 15:04:05.999999Z07")
}

func appendNullTime(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, `\N`...)
	}
	return appendTime(b, *t)
}

func (w *rowWriter) row(b []byte, i int, resolved time.Time) []byte {
	r := w.r
	scheduled := resolved.Add(2 * time.Hour)
	sent := scheduled.Add(time.Duration(r.IntN(3000)) * time.Millisecond)
	expires := sent.Add(7 * 24 * time.Hour)
	answered := r.IntN(100) < 60
	status := "expired"
	var rating int
	var responded *time.Time
	var feedback string
	switch {
	case i < w.t.Live && i%2 == 1: // odd live rows are left unanswered for submit
		status, answered = "sent", false
	case answered:
		status = "completed"
		rating = ratings[r.IntN(len(ratings))]
		at := sent.Add(time.Duration(r.IntN(48*3600)) * time.Second)
		if at.After(w.now) {
			at = w.now
		}
		responded = &at
		if r.IntN(100) < 30 {
			feedback = comments[r.IntN(len(comments))]
		}
	case expires.After(w.now):
		status = "sent"
	}
	updated := sent
	if responded != nil {
		updated = *responded
	} else if status == "expired" {
		updated = expires
	}
	tok := sha256.Sum256([]byte(benchToken(w.t.ID, i)))

	b = append(b, w.t.ID...)
	b = append(b, '\t')
	b = append(b, surveyID(r, resolved)...)
	b = append(b, "\tconv_"...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, "\tcustomer"...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, "@example.com\tCustomer "...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, "\tagent_"...)
	b = strconv.AppendInt(b, int64(r.IntN(60)), 10)
	b = append(b, "\tteam_"...)
	b = strconv.AppendInt(b, int64(r.IntN(8)), 10)
	b = append(b, '\t')
	b = append(b, channels[r.IntN(len(channels))]...)
	b = append(b, "\ten\t"...)
	b = append(b, status...)
	b = append(b, '\t')
	if rating > 0 {
		b = strconv.AppendInt(b, int64(rating), 10)
	} else {
		b = append(b, `\N`...)
	}
	b = append(b, '\t')
	if feedback != "" {
		b = append(b, feedback...)
	} else {
		b = append(b, `\N`...)
	}
	b = append(b, "\tf\t\\\\x"...)
	b = hex.AppendEncode(b, tok[:])
	b = append(b, '\t')
	b = appendTime(b, resolved)
	b = append(b, '\t')
	b = appendTime(b, scheduled)
	b = append(b, '\t')
	b = appendTime(b, sent)
	b = append(b, '\t')
	b = appendTime(b, expires)
	b = append(b, '\t')
	b = appendNullTime(b, responded)
	b = append(b, '\t')
	b = appendTime(b, resolved)
	b = append(b, '\t')
	b = appendTime(b, updated)
	return append(b, '\n')
}

// copySurveys streams rows [lo, hi) of a tenant into Postgres with COPY.
func copySurveys(ctx context.Context, bdb *bun.DB, t tenantData, lo, hi int, now time.Time, seed uint64) error {
	conn, err := bdb.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<20)
		w := &rowWriter{t: t, lo: lo, hi: hi, now: now, r: rand.New(rand.NewPCG(seed, uint64(lo)))}
		err := w.writeTo(bw)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	_, err = pgdriver.CopyFrom(ctx, conn, pr, "COPY surveys ("+surveyColumns+") FROM STDIN")
	_ = pr.Close()
	if err != nil {
		return fmt.Errorf("copy surveys of %s: %w", t.ID, err)
	}
	return nil
}

// secondaryIndexes returns the CREATE INDEX statements of the surveys
// indexes that back no constraint: the loader drops them and builds them
// again after COPY, which is several times faster than updating them row
// by row. Read from the catalog, so indexes other migrations add are kept.
func secondaryIndexes(ctx context.Context, bdb *bun.DB) (names, defs []string, err error) {
	rows, err := bdb.QueryContext(ctx, `
		SELECT i.indexname, i.indexdef FROM pg_indexes i
		WHERE i.schemaname = current_schema() AND i.tablename = 'surveys'
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var n, d string
		if err := rows.Scan(&n, &d); err != nil {
			return nil, nil, err
		}
		names, defs = append(names, n), append(defs, d)
	}
	return names, defs, rows.Err()
}
