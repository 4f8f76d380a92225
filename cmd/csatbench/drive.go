package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// result is what one scenario measured.
type result struct {
	Name     string  `json:"name"`
	Kind     string  `json:"kind"` // read, write, or floor
	RPS      float64 `json:"rps"`
	P50      float64 `json:"p50_ms"`
	P95      float64 `json:"p95_ms"`
	P99      float64 `json:"p99_ms"`
	FloorRPS float64 `json:"floor_rps"`
	Ratio    float64 `json:"ratio"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	Note     string  `json:"note,omitempty"`
}

// op is one request of a scenario; worker is the caller's index and n a
// counter unique within the scenario. It returns an error for a failure.
type op func(ctx context.Context, worker, n int) error

// drive runs fn from concurrency goroutines for d and measures it.
func drive(ctx context.Context, name, kind string, concurrency int, d time.Duration, fn op) result {
	var counter atomic.Int64
	lat := make([][]time.Duration, concurrency)
	errCount := make([]int, concurrency)
	var firstErr atomic.Value
	// Requests run to completion: a deadline on their context would cut
	// the last ones off mid-flight (and make the server log them).
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(end) {
				n := int(counter.Add(1))
				t0 := time.Now()
				err := fn(ctx, w, n)
				if ctx.Err() != nil {
					return // interrupted: not a sample
				}
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil {
					errCount[w]++
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	res := result{Name: name, Kind: kind, Requests: len(all)}
	for _, e := range errCount {
		res.Errors += e
	}
	if e, ok := firstErr.Load().(string); ok {
		res.Note = "first error: " + e
	}
	if len(all) == 0 {
		return res
	}
	slices.Sort(all)
	res.RPS = round(float64(len(all))/elapsed.Seconds(), 1)
	res.P50, res.P95, res.P99 = pct(all, 0.50), pct(all, 0.95), pct(all, 0.99)
	return res
}

func pct(sorted []time.Duration, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return round(float64(sorted[i])/float64(time.Millisecond), 2)
}

func round(v float64, places int) float64 {
	m := math.Pow(10, float64(places))
	return math.Round(v*m) / m
}

// httpClient keeps one connection per driver goroutine.
func httpClient(concurrency int) *http.Client {
	tr := &http.Transport{
		MaxIdleConns:        concurrency * 2,
		MaxIdleConnsPerHost: concurrency * 2,
		IdleConnTimeout:     time.Minute,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// do sends a request and fails unless the status is one of want.
func do(ctx context.Context, c *http.Client, method, url, key string, body string, want ...int) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	buf := readBody(resp)
	defer bodies.Put(buf)
	b := buf.Bytes()
	if slices.Contains(want, resp.StatusCode) {
		if bytes.Contains(b, []byte(`"errors"`)) && strings.HasSuffix(url, "/graphql") {
			return fmt.Errorf("graphql errors: %.200s", b)
		}
		return nil
	}
	return fmt.Errorf("%s %s: %d %.200s", method, url, resp.StatusCode, b)
}

// bodies recycles response buffers: the load generator shares the cores
// with the service it measures, so it should cost as little as it can
// (io.ReadAll grew a fresh slice for every response, and the GraphQL
// replies were decoded whole only to look for errors).
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads and closes resp's body into a buffer from bodies.
func readBody(resp *http.Response) *bytes.Buffer {
	buf := bodies.Get().(*bytes.Buffer)
	buf.Reset()
	_, _ = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	return buf
}

// rssSampler records the process's peak resident set size while it runs.
type rssSampler struct {
	peak atomic.Int64 // kB
	stop chan struct{}
	done chan struct{}
}

func startRSS() *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if kb := currentRSS(); kb > s.peak.Load() {
				s.peak.Store(kb)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// PeakMB stops sampling and returns the peak in MB.
func (s *rssSampler) PeakMB() float64 {
	close(s.stop)
	<-s.done
	return round(float64(s.peak.Load())/1024, 1)
}

// currentRSS reads VmRSS (kB) from /proc/self/status; 0 where unavailable.
func currentRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
