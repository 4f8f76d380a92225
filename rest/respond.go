// Package rest is the REST compatibility layer: it serves the documented
// /api/v1/csat paths in their documented shapes. It only parses, calls the
// survey service and writes JSON.
package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/csat/csat/errs"
)

// MaxBody caps request bodies.
const MaxBody = 64 << 10

var statusOf = map[errs.Code]int{
	errs.Invalid:         http.StatusBadRequest,
	errs.Unprocessable:   http.StatusUnprocessableEntity,
	errs.NotFound:        http.StatusNotFound,
	errs.Conflict:        http.StatusConflict,
	errs.Gone:            http.StatusGone,
	errs.Unauthenticated: http.StatusUnauthorized,
	errs.Forbidden:       http.StatusForbidden,
	errs.RateLimited:     http.StatusTooManyRequests,
	errs.TooLarge:        http.StatusRequestEntityTooLarge,
	errs.Unavailable:     http.StatusServiceUnavailable,
	errs.Internal:        http.StatusInternalServerError,
}

// HTTPStatus is the status REST answers for err.
func HTTPStatus(err error) int {
	if s, ok := statusOf[errs.CodeOf(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// jsonBufs recycles response buffers: a page of surveys is larger than the
// server's 4 KiB write buffer, and encoded whole it goes out with a
// Content-Length in one write instead of several chunks.
var jsonBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer {
	buf := jsonBufs.Get().(*bytes.Buffer)
	buf.Reset()
	return buf
}

func putBuf(buf *bytes.Buffer) {
	if buf.Cap() <= 1<<20 { // keep no huge buffers alive
		jsonBufs.Put(buf)
	}
}

// WriteJSON writes v with a status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	buf := getBuf()
	defer putBuf(buf)
	_ = json.NewEncoder(buf).Encode(v)
	writeBody(w, status, buf.Bytes())
}

// writeBody writes an encoded JSON answer with a status.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Unavailable classifies errors that mean a backing service is down; set by
// the app so this package needs no driver.
var Unavailable = func(error) bool { return false }

// WriteError writes err as {"error": {...}}. Unexpected errors are logged
// and shown as a generic message: internals never leak.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := errs.As(err)
	if e == nil {
		if Unavailable(err) {
			e = errs.New(errs.Unavailable, "the service is temporarily unavailable, please retry")
		} else {
			slog.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
			e = errs.New(errs.Internal, "internal error")
		}
	}
	if e.Code == errs.Unavailable {
		w.Header().Set("Retry-After", "5")
	}
	WriteJSON(w, statusOf[e.Code], errorBody{errorDetail{Code: string(e.Code), Message: e.Message, Fields: e.Fields}})
}

// decodeJSON reads a JSON object body strictly: unknown fields, trailing
// data, wrong types and oversized bodies are client errors.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return errs.New(errs.Invalid, "request body must hold a single JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var (
		syn   *json.SyntaxError
		typ   *json.UnmarshalTypeError
		large *http.MaxBytesError
	)
	switch {
	case errors.As(err, &large):
		return errs.New(errs.TooLarge, "request body is larger than %d bytes", MaxBody)
	case errors.Is(err, io.EOF):
		return errs.New(errs.Invalid, "request body is empty; send a JSON object")
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return errs.New(errs.Invalid, "request body is not valid JSON")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errs.New(errs.Invalid, "request body must be a JSON object")
		}
		return &errs.Error{Code: errs.Invalid, Message: fmt.Sprintf("%s must be a %s", typ.Field, jsonKind(typ.Type.Kind().String())),
			Fields: map[string]string{typ.Field: "wrong type"}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &errs.Error{Code: errs.Invalid, Message: fmt.Sprintf("unknown field %q", name), Fields: map[string]string{name: "unknown field"}}
	}
	return errs.New(errs.Invalid, "request body is not valid JSON")
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64", "int32":
		return "whole number"
	case "float64":
		return "number"
	case "bool":
		return "boolean"
	case "ptr":
		return "value of the documented type"
	}
	return k
}
