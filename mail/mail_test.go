package mail_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/csat/csat/mail"
)

// server is an in-process SMTP server that keeps what it received.
type server struct {
	addr   string
	mu     sync.Mutex
	bodies []string
	refuse string       // a recipient refused at RCPT
	wire   bytes.Buffer // what the client sent and the server answered
}

// Write records the session's traffic (smtp.Server.Debug).
func (s *server) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wire.Write(p)
}

// lines returns the recorded traffic's lines that start with prefix.
func (s *server) lines(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range strings.Split(s.wire.String(), "\r\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func startServer(tb testing.TB) *server {
	tb.Helper()
	s := &server{}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.Debug = s
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *server) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

type backend struct{ s *server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct{ s *server }

func (*session) Reset()                               {}
func (*session) Logout() error                        { return nil }
func (*session) Mail(string, *smtp.MailOptions) error { return nil }
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == x.s.refuse {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	return nil
}
func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	x.s.bodies = append(x.s.bodies, string(b))
	x.s.mu.Unlock()
	return nil
}

func sender(tb testing.TB, s *server) *mail.SMTP {
	tb.Helper()
	m, err := mail.NewSMTP("smtp://"+s.addr, "CSAT <surveys@localhost>")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

func message(to string) mail.Message {
	return mail.Message{To: to, ToName: "Ann", Subject: "How did we do?",
		Text: "Hello\n.a line starting with a dot\n..and two\nbye",
		HTML: "<p>Hello</p>\n.dot\n<p>bye</p>"}
}

// Messages go out whole over one pooled connection, lines starting with a
// dot intact; a refused recipient fails only its own message, and the
// connection stays usable.
func TestSMTPSendsOverPooledConnection(t *testing.T) {
	s := startServer(t)
	s.refuse = "refused@example.com"
	m := sender(t, s)
	ctx := context.Background()
	for i, to := range []string{"a@example.com", "refused@example.com", "b@example.com"} {
		var held, committed bool
		h := &mail.Handoff{Hold: func() error { held = true; return nil }, Commit: func() error { committed = true; return nil }}
		err := m.Send(ctx, message(to), h)
		if refused := to == s.refuse; refused != (err != nil) || errors.Is(err, mail.ErrUncertain) {
			t.Fatalf("message %d to %s: %v", i, to, err)
		}
		if want := to != s.refuse; held != want || committed != want {
			t.Errorf("message %d: held %v committed %v", i, held, committed)
		}
	}
	got := s.received()
	if len(got) != 2 {
		t.Fatalf("%d messages received, want 2", len(got))
	}
	for _, b := range got {
		if !strings.Contains(b, "\r\n.a line starting with a dot\r\n..and two\r\n") {
			t.Errorf("text part changed on the way:\n%s", b)
		}
	}
}

// The pipelined envelope is what go-mail's client would send one command
// at a time: the paths in angle brackets (RFC 5321 4.1.1.2-3; go-mail's
// addresses carry them), BODY=8BITMIME when the server offers it.
func TestSMTPPipelinedEnvelope(t *testing.T) {
	s := startServer(t)
	m := sender(t, s)
	if err := m.Send(context.Background(), message("a@example.com"), nil); err != nil {
		t.Fatal(err)
	}
	mailFrom, rcptTo := s.lines("MAIL "), s.lines("RCPT ")
	if len(mailFrom) != 1 || mailFrom[0] != "MAIL FROM:<surveys@localhost> BODY=8BITMIME" {
		t.Errorf("MAIL commands %q, want MAIL FROM:<surveys@localhost> BODY=8BITMIME", mailFrom)
	}
	if len(rcptTo) != 1 || rcptTo[0] != "RCPT TO:<a@example.com>" {
		t.Errorf("RCPT commands %q, want RCPT TO:<a@example.com>", rcptTo)
	}
}

// A Hold error abandons the message: the server never gets its final ".".
func TestSMTPHoldErrorAbandons(t *testing.T) {
	s := startServer(t)
	m := sender(t, s)
	err := m.Send(context.Background(), message("a@example.com"), &mail.Handoff{Hold: func() error { return errors.New("claim lost") }})
	if !errors.Is(err, mail.ErrAbandoned) {
		t.Fatalf("send: %v", err)
	}
	if err := m.Send(context.Background(), message("b@example.com"), nil); err != nil {
		t.Fatalf("next send: %v", err)
	}
	if got := s.received(); len(got) != 1 || !strings.Contains(got[0], "b@example.com") {
		t.Fatalf("received %d messages", len(got))
	}
}

// BenchmarkSMTPSend is one message (a survey email's size) over a pooled
// connection to an in-process server, the server's work included.
func BenchmarkSMTPSend(b *testing.B) {
	s := startServer(b)
	m := sender(b, s)
	msg := message("a@example.com")
	msg.HTML = strings.Repeat("<tr><td style=\"padding:8px\"><a href=\"https://example.com/r?token=abc&amp;rating=1\">Very satisfied</a></td></tr>\n", 40)
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Send(context.Background(), msg, &mail.Handoff{}); err != nil {
			b.Fatal(err)
		}
	}
}

// plainServer speaks SMTP without PIPELINING, one command at a time, and
// counts the messages it accepted.
func plainServer(tb testing.TB) (addr string, accepted func() int) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := textproto.NewConn(c)
				_ = tc.PrintfLine("220 localhost ready")
				for {
					line, err := tc.ReadLine()
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(strings.Fields(line + " x")[0]); cmd {
					case "EHLO":
						_ = tc.PrintfLine("250-localhost\r\n250 8BITMIME")
					case "DATA":
						_ = tc.PrintfLine("354 go ahead")
						if _, err := tc.ReadDotBytes(); err != nil {
							return
						}
						mu.Lock()
						n++
						mu.Unlock()
						_ = tc.PrintfLine("250 accepted")
					case "QUIT":
						_ = tc.PrintfLine("221 bye")
						return
					default:
						_ = tc.PrintfLine("250 ok")
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// A server without PIPELINING gets the commands one at a time.
func TestSMTPWithoutPipelining(t *testing.T) {
	addr, accepted := plainServer(t)
	m, err := mail.NewSMTP("smtp://"+addr, "CSAT <surveys@localhost>")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for range 3 {
		if err := m.Send(context.Background(), message("a@example.com"), &mail.Handoff{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := accepted(); n != 3 {
		t.Fatalf("%d messages accepted, want 3", n)
	}
}
