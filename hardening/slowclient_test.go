package hardening

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csat/csat/testenv"
)

// TestSlowHeadersCutOff: slowloris. Clients open connections and dribble
// a request header a byte at a time, forever. However steadily they
// write, the server closes each connection once HTTP_READ_HEADER_TIMEOUT
// has passed since it opened (the deadline covers the whole header, not
// each read), and a normal client is served while they hang on.
func TestSlowHeadersCutOff(t *testing.T) {
	const timeout = time.Second
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Role: "api",
		Env: map[string]string{"HTTP_READ_HEADER_TIMEOUT": timeout.String()}})
	if s.App.Cfg.ReadHeaderTimeout != timeout {
		t.Fatalf("ReadHeaderTimeout %s, want %s", s.App.Cfg.ReadHeaderTimeout, timeout)
	}
	addr := strings.TrimPrefix(s.URL, "http://")
	const slow = 50
	type result struct {
		lived time.Duration
		got   string
		err   error
	}
	results := make(chan result, slow)
	var opened sync.WaitGroup
	opened.Add(slow)
	for range slow {
		go func() {
			c, err := net.Dial("tcp", addr)
			opened.Done()
			if err != nil {
				results <- result{err: err}
				return
			}
			defer c.Close()
			start := time.Now()
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: csat\r\nX-Slow: "); err != nil {
					return
				}
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := c.Write([]byte("a")); err != nil {
							return // closed by the server
						}
					}
				}
			}()
			// Reading ends when the server closes the connection; our own
			// deadline only catches a server that never does.
			_ = c.SetReadDeadline(time.Now().Add(timeout + 10*time.Second))
			b, err := io.ReadAll(c)
			results <- result{lived: time.Since(start), got: string(b), err: err}
		}()
	}
	opened.Wait()

	// Meanwhile a normal client is served over fresh connections (the
	// client's timeout is generous: a loaded machine is slow, not wrong).
	normal := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	served := 0
	for deadline := time.Now().Add(timeout / 2); time.Now().Before(deadline); {
		res, err := normal.Get(s.URL + "/healthz")
		if err != nil {
			t.Fatalf("a normal client was not served while slow clients held connections: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("a normal client got %d while slow clients held connections", res.StatusCode)
		}
		served++
	}

	var longest time.Duration
	for range slow {
		r := <-results
		var ne net.Error
		switch {
		case errors.As(r.err, &ne) && ne.Timeout():
			t.Fatalf("a slow client kept its connection for %s: the header timeout did not cut it", r.lived.Round(time.Millisecond))
		case r.err != nil && r.lived == 0:
			t.Fatalf("dial: %v", r.err)
		case r.lived < timeout*8/10:
			t.Errorf("a slow client was cut after %s, before the %s header timeout", r.lived, timeout)
		case r.lived > timeout+3*time.Second:
			t.Errorf("a slow client was cut only after %s (header timeout %s)", r.lived, timeout)
		case r.got != "" && !strings.HasPrefix(r.got, "HTTP/1.1 408"):
			t.Errorf("a slow client got an answer other than a timeout: %q", r.got)
		}
		longest = max(longest, r.lived)
	}
	t.Logf("%d slow clients cut after at most %s; %d normal requests served meanwhile", slow, longest.Round(time.Millisecond), served)
	if served == 0 {
		t.Error("no normal request was served while slow clients held connections")
	}
}
