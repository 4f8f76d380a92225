package testenv

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/uptrace/bun"

	"github.com/csat/csat/survey"
)

// Email is one message the SMTP server accepted.
type Email struct {
	From    string
	To      []string
	Header  mail.Header
	Subject string
	Text    string
	HTML    string
	Raw     []byte
}

// SMTPServer is an in-process SMTP server that keeps what it receives.
type SMTPServer struct {
	Addr string
	mu   sync.Mutex
	msgs []Email
	fail func(to string) bool
	gate *gate // non-nil: DATA waits until it opens
	// watched is set once a test service sends through this server;
	// committed counts its committed sends by recipient.
	watched   bool
	committed map[string]int
	held      int // messages waiting at the gate
}

type gate struct {
	open    chan struct{}
	deliver bool
	atRcpt  bool // hold at RCPT, before the client sends the message
}

// Block makes the server slow: every DATA waits until release is called.
// release(true) accepts the held messages; release(false) refuses them
// with a temporary error, as if the client had gone before the server
// accepted them. Messages after the release are not held.
func (s *SMTPServer) Block() (release func(deliver bool)) {
	return s.block(&gate{open: make(chan struct{})})
}

// BlockRcpt is Block one step earlier: every RCPT waits, so the client
// has not sent the message yet. release(false) refuses the recipients.
func (s *SMTPServer) BlockRcpt() (release func(deliver bool)) {
	return s.block(&gate{open: make(chan struct{}), atRcpt: true})
}

func (s *SMTPServer) block(g *gate) (release func(deliver bool)) {
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
	var once sync.Once
	return func(deliver bool) {
		once.Do(func() {
			s.mu.Lock()
			s.gate, g.deliver = nil, deliver
			s.mu.Unlock()
			close(g.open)
		})
	}
}

// Waiting is the number of messages held by Block.
func (s *SMTPServer) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// SetFail makes DATA fail for recipients fail reports (a simulated
// outage); nil ends it.
func (s *SMTPServer) SetFail(fail func(to string) bool) {
	s.mu.Lock()
	s.fail = fail
	s.mu.Unlock()
}

// SMTP starts an SMTP server on a loopback port until the test ends.
func SMTP(tb testing.TB) *SMTPServer {
	tb.Helper()
	s := &SMTPServer{}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("smtp listen: %v", err)
	}
	s.Addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return s
}

// URL is the SMTP_URL of the server.
func (s *SMTPServer) URL() string { return "smtp://" + s.Addr }

// Messages returns a copy of what arrived so far.
func (s *SMTPServer) Messages() []Email {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Email(nil), s.msgs...)
}

// To returns the messages sent to addr.
func (s *SMTPServer) To(addr string) []Email {
	var out []Email
	for _, m := range s.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, m)
			}
		}
	}
	return out
}

// WaitFor polls until n messages went to addr and returns them.
// When a test service sends through this server, it also waits until n
// sends to addr committed, so the survey is "sent" in Postgres and its
// links work.
func (s *SMTPServer) WaitFor(tb testing.TB, addr string, n int, timeout time.Duration) []Email {
	tb.Helper()
	Eventually(tb, timeout, "email to "+addr, func() bool {
		s.mu.Lock()
		watched, committed := s.watched, s.committed[strings.ToLower(addr)]
		s.mu.Unlock()
		return len(s.To(addr)) >= n && (!watched || committed >= n)
	})
	return s.To(addr)
}

// sentWatch counts committed sends (and resends) per recipient for WaitFor.
type sentWatch struct{ s *SMTPServer }

func (w sentWatch) InTx(context.Context, bun.IDB, survey.Event) error { return nil }

func (w sentWatch) AfterCommit(_ context.Context, ev survey.Event) {
	if (ev.Type != survey.EventSent && ev.Type != survey.EventResent) || ev.Survey == nil {
		return
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.committed == nil {
		w.s.committed = map[string]int{}
	}
	w.s.committed[strings.ToLower(ev.Survey.ContactEmail)]++
}

var linkRE = regexp.MustCompile(`https?://[^\s"'<>]+`)

// Links returns the URLs in the text part, in order.
func (e Email) Links() []string { return linkRE.FindAllString(e.Text, -1) }

type backend struct{ s *SMTPServer }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s    *SMTPServer
	from string
	to   []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := x.s.pass(true); err != nil {
		return err
	}
	x.to = append(x.to, to)
	return nil
}

// pass waits at a gate set for this step (RCPT when atRcpt, else DATA),
// counting the held message, and returns the refusal when it opens with
// deliver false.
func (s *SMTPServer) pass(atRcpt bool) error {
	s.mu.Lock()
	gate := s.gate
	if gate != nil && gate.atRcpt != atRcpt {
		gate = nil
	}
	if gate != nil {
		s.held++
	}
	s.mu.Unlock()
	if gate == nil {
		return nil
	}
	<-gate.open
	s.mu.Lock()
	s.held--
	s.mu.Unlock()
	if !gate.deliver {
		return &smtp.SMTPError{Code: 451, Message: "try again later"}
	}
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := x.s.pass(false); err != nil {
		return err
	}
	x.s.mu.Lock()
	fail := x.s.fail
	x.s.mu.Unlock()
	for _, to := range x.to {
		if fail != nil && fail(to) {
			return &smtp.SMTPError{Code: 451, Message: "try again later"}
		}
	}
	e := Email{From: x.from, To: x.to, Raw: raw}
	if m, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		e.Header = m.Header
		e.Subject, _ = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		parsePart(m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Body, &e)
	}
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, e)
	x.s.mu.Unlock()
	return nil
}

func parsePart(contentType, encoding string, body io.Reader, e *Email) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return
			}
			parsePart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, e)
		}
	}
	var rd = body
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		rd = quotedprintable.NewReader(body)
	case "base64":
		rd = newBase64(body)
	}
	b, _ := io.ReadAll(rd)
	switch mt {
	case "text/plain":
		e.Text = string(b)
	case "text/html":
		e.HTML = string(b)
	}
}
