package main

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// sink is a local SMTP server that accepts everything and records when
// each message was accepted.
type sink struct {
	srv *smtp.Server
	ln  net.Listener
	mu  sync.Mutex
	at  []time.Time
	to  []string // recipient of each message in at
}

func startSink() (*sink, error) {
	s := &sink{}
	s.srv = smtp.NewServer(sinkBackend{s})
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	var err error
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	go func() { _ = s.srv.Serve(s.ln) }()
	return s, nil
}

func (s *sink) URL() string { return "smtp://" + s.ln.Addr().String() }
func (s *sink) Close()      { _ = s.srv.Close() }

// reset forgets what arrived so far.
func (s *sink) reset() {
	s.mu.Lock()
	s.at, s.to = nil, nil
	s.mu.Unlock()
}

// acceptedTo returns when each recipient's messages were accepted.
func (s *sink) acceptedTo() map[string][]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]time.Time, len(s.to))
	for i, to := range s.to {
		out[to] = append(out[to], s.at[i])
	}
	return out
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at)
}

type sinkBackend struct{ s *sink }

func (b sinkBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &sinkSession{s: b.s}, nil
}

type sinkSession struct {
	s  *sink
	to string
}

func (x *sinkSession) Reset()                             { x.to = "" }
func (*sinkSession) Logout() error                        { return nil }
func (*sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (x *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = to
	return nil
}
func (x *sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	now := time.Now()
	x.s.mu.Lock()
	x.s.at = append(x.s.at, now)
	x.s.to = append(x.s.to, x.to)
	x.s.mu.Unlock()
	return nil
}
