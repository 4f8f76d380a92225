// Package mail sends email: through SMTP, or into the log when no SMTP
// server is configured (development).
package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// Message is one email with an HTML and a plain-text part.
type Message struct {
	To      string
	ToName  string
	Subject string
	HTML    string
	Text    string
	Headers map[string]string
}

// Sender delivers messages.
type Sender interface {
	// Send delivers m. With a Handoff, the sender records the release
	// through it (see Handoff); with nil it just sends.
	Send(ctx context.Context, m Message, h *Handoff) error
}

// A Handoff lets the caller record a message's release so that a crash at
// any moment neither loses nor repeats it (short of one instant, below):
//
//   - Hold runs once the server has the whole message and before its
//     final "." (typically: begin a transaction and mark the send). An
//     error abandons the message: the connection is dropped without the
//     ".", and the server discards what it got.
//   - Commit runs right after the "." was written, before the server's
//     answer is read (typically: commit that transaction). A process
//     killed before Commit's bytes leave rolls the record back, and one
//     killed after leaves it committed; only a kill between the two
//     writes, microseconds apart, repeats the email.
//   - Undo runs instead of Commit when the "." could not be written.
//
// Send's error says what happened after Commit: ErrUncertain when the
// answer was lost (the server may have the message), any other error when
// the server refused it.
type Handoff struct {
	Hold   func() error
	Commit func() error
	Undo   func()
}

func (h *Handoff) hold() error {
	if h == nil || h.Hold == nil {
		return nil
	}
	return h.Hold()
}

func (h *Handoff) commit() error {
	if h == nil || h.Commit == nil {
		return nil
	}
	return h.Commit()
}

func (h *Handoff) undo() {
	if h != nil && h.Undo != nil {
		h.Undo()
	}
}

var (
	// ErrAbandoned wraps a Hold error: the message was not released.
	ErrAbandoned = errors.New("message abandoned before release")
	// ErrUncertain marks a failure after the message was released
	// without the server's answer: it may or may not have it.
	ErrUncertain = errors.New("outcome unknown after release")
	// ErrUnrecorded wraps a Commit error: the message was released but
	// its record did not commit.
	ErrUnrecorded = errors.New("message released but not recorded")
)

// SMTP sends through an SMTP server given as smtp://[user:pass@]host:port
// (smtps:// for implicit TLS). It keeps up to MaxIdle connections open
// between messages: a wave of thousands of emails costs a handshake (and
// TLS and AUTH) per connection, not per email.
type SMTP struct {
	From    string
	MaxIdle int           // idle connections kept; 0 keeps none
	MaxAge  time.Duration // a connection idle longer is closed, not reused
	MaxUses int           // messages per connection before a fresh one

	client *gomail.Client
	mu     sync.Mutex
	idle   []*conn
}

type conn struct {
	c    *smtp.Client
	raw  net.Conn // under any TLS: its deadline aborts a blocked exchange
	used int
	at   time.Time // when it was last returned
}

// dialSlot receives the connection a dial made (see dial).
type dialSlot struct{ raw net.Conn }

type dialSlotKey struct{}

// NewSMTP parses rawURL and prepares a client; it connects on first use.
func NewSMTP(rawURL, from string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "smtp" && u.Scheme != "smtps") {
		return nil, fmt.Errorf("SMTP_URL must look like smtp://user:pass@host:port")
	}
	port := 25
	if u.Scheme == "smtps" {
		port = 465
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("SMTP_URL port: %w", err)
		}
	}
	host := u.Hostname()
	opts := []gomail.Option{
		gomail.WithPort(port),
		gomail.WithTimeout(15 * time.Second),
		// smtps: dial does the TLS handshake, and go-mail sees a TLS
		// connection (no STARTTLS offered on it, encrypted for AUTH).
		gomail.WithDialContextFunc(dial(host, u.Scheme == "smtps")),
		gomail.WithTLSPolicy(gomail.TLSOpportunistic),
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		opts = append(opts,
			gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(u.User.Username()),
			gomail.WithPassword(pass))
	}
	client, err := gomail.NewClient(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	return &SMTP{From: from, MaxIdle: 32, MaxAge: 5 * time.Second, MaxUses: 100, client: client}, nil
}

// Send delivers one message over a pooled connection. A connection that
// fails before DATA (a server that dropped an idle connection) is replaced
// once: nothing was sent on it.
func (s *SMTP) Send(ctx context.Context, m Message, h *Handoff) error {
	msg, err := s.build(m)
	if err != nil {
		return err
	}
	from, err := msg.GetSender(false)
	if err != nil {
		return fmt.Errorf("from address: %w", err)
	}
	rcpts, err := msg.GetRecipients()
	if err != nil {
		return fmt.Errorf("to address: %w", err)
	}
	for attempt := 0; ; attempt++ {
		cn, reused, err := s.get(ctx)
		if err != nil {
			return fmt.Errorf("smtp connect: %w", err)
		}
		err = s.send(ctx, cn, reused && attempt == 0, from, rcpts, msg, h)
		if errors.Is(err, errStale) {
			continue
		}
		return err
	}
}

// errStale: a pooled connection failed before anything was sent.
var errStale = errors.New("stale connection")

// send runs one SMTP transaction on cn. A cancelled ctx aborts it at once
// (a worker shutting down does not wait out a slow server).
func (s *SMTP) send(ctx context.Context, cn *conn, retryable bool, from string, rcpts []string, msg *gomail.Msg, h *Handoff) error {
	deadline := time.Now().Add(15 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = cn.raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = cn.raw.SetDeadline(time.Now()) })
	keep := func(ok, dirty bool) {
		if !stop() { // aborted: the connection is out of step
			ok = false
		}
		s.put(cn, ok, dirty)
	}
	err := envelope(cn.c, from, rcpts)
	if err != nil && retryable && ctx.Err() == nil {
		// A pooled connection the server dropped (or is closing with
		// 421): nothing was sent on it, so try a fresh one.
		stop()
		_ = cn.c.Close()
		return errStale
	}
	if err != nil {
		var oos errOutOfStep
		keep(isReply(err) && !errors.As(err, &oos), true)
		return fmt.Errorf("smtp send: %w", err)
	}
	err = data(cn.c, msg, h)
	if errors.Is(err, ErrAbandoned) {
		stop()
		_ = cn.c.Close() // mid-DATA: only dropping the connection discards the message
		return err
	}
	keep(err == nil || isReply(err), err != nil)
	if err != nil {
		return fmt.Errorf("smtp send: %w", err)
	}
	return nil
}

// envelope sends MAIL, RCPT and DATA and reads their answers up to DATA's
// 354. A server that offers PIPELINING (RFC 2920) gets the three commands
// in one write: one round trip per message instead of three.
func envelope(c *smtp.Client, from string, rcpts []string) error {
	if ok, _ := c.Extension("PIPELINING"); !ok {
		if err := c.Mail(from); err != nil {
			return err
		}
		for _, r := range rcpts {
			if err := c.Rcpt(r); err != nil {
				return err
			}
		}
		_, err := c.Data() // its writer is not used: data writes the message
		return err
	}
	for _, a := range append([]string{from}, rcpts...) {
		if strings.ContainsAny(a, "\r\n") {
			return errors.New("smtp: a line must not contain CR or LF")
		}
	}
	cmd := "MAIL FROM:" + from
	if ok, _ := c.Extension("8BITMIME"); ok {
		cmd += " BODY=8BITMIME"
	}
	if ok, _ := c.Extension("SMTPUTF8"); ok {
		cmd += " SMTPUTF8"
	}
	w := c.Text.W
	_, _ = w.WriteString(cmd + "\r\n")
	for _, r := range rcpts {
		_, _ = w.WriteString("RCPT TO:" + r + "\r\n")
	}
	_, _ = w.WriteString("DATA\r\n")
	if err := w.Flush(); err != nil {
		return err
	}
	// Every answer is read, so the session stays in step; the first
	// refusal is the error.
	var first error
	for i := 0; i < 1+len(rcpts); i++ {
		if _, _, err := c.Text.ReadResponse(25); err != nil {
			if !isReply(err) {
				return err
			}
			if first == nil {
				first = err
			}
		}
	}
	_, _, err := c.Text.ReadResponse(354)
	switch {
	case err != nil && !isReply(err):
		return err
	case err == nil && first != nil:
		// In DATA despite a refused command: only dropping the
		// connection ends it without a message.
		return fmt.Errorf("%w (the server took DATA regardless)", errOutOfStep{first})
	case first != nil:
		return first
	}
	return err
}

// errOutOfStep wraps a refusal after which the connection cannot be reused.
type errOutOfStep struct{ err error }

func (e errOutOfStep) Error() string { return e.err.Error() }
func (e errOutOfStep) Unwrap() error { return e.err }

// bufs holds the buffers messages are written into before they go out.
var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// data writes the message (the server answered DATA with 354) and releases
// it through the handoff.
func data(c *smtp.Client, msg *gomail.Msg, h *Handoff) error {
	buf, out := bufs.Get().(*bytes.Buffer), bufs.Get().(*bytes.Buffer)
	defer func() { buf.Reset(); out.Reset(); bufs.Put(buf); bufs.Put(out) }()
	if _, err := msg.WriteTo(buf); err != nil {
		return err
	}
	// Everything but the final "." is on the wire before Hold: in one
	// write (the connection's buffer is empty after DATA's 354, and a
	// larger write skips it) rather than one per 4 KB of message.
	out.Grow(buf.Len() + buf.Len()/16 + 2)
	if _, err := c.Text.W.Write(appendDotted(out.AvailableBuffer(), buf.Bytes())); err != nil {
		return err
	}
	if err := c.Text.W.Flush(); err != nil {
		return err
	}
	if err := h.hold(); err != nil {
		return fmt.Errorf("%w: %w", ErrAbandoned, err)
	}
	// The final "." goes out here; the server's answer is read below,
	// after Commit.
	if _, err := c.Text.W.WriteString(".\r\n"); err != nil {
		h.undo()
		return err
	}
	if err := c.Text.W.Flush(); err != nil {
		h.undo()
		return err
	}
	if err := h.commit(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnrecorded, err)
	}
	if _, _, err := c.Text.ReadResponse(250); err != nil {
		if isReply(err) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUncertain, err)
	}
	return nil
}

// appendDotted appends msg as the body of DATA (RFC 5321 4.5.2) to dst:
// every line ends in CRLF, a line starting with "." gets a second one, and
// the last line is ended, so that ".\r\n" ends the message. It is what
// textproto's dot writer does, a line at a time instead of a byte.
func appendDotted(dst, msg []byte) []byte {
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > 0 && line[0] == '.' {
			dst = append(dst, '.')
		}
		dst = append(append(dst, line...), '\r', '\n')
	}
	return dst
}

// isReply reports whether err is the server's answer (the connection is
// still in step) rather than a broken connection.
func isReply(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te)
}

func (s *SMTP) get(ctx context.Context) (*conn, bool, error) {
	s.mu.Lock()
	for len(s.idle) > 0 {
		cn := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if time.Since(cn.at) < s.MaxAge {
			s.mu.Unlock()
			return cn, true, nil
		}
		go func() { _ = cn.c.Close() }()
	}
	s.mu.Unlock()
	slot := &dialSlot{}
	c, err := s.client.DialToSMTPClientWithContext(context.WithValue(ctx, dialSlotKey{}, slot))
	if err != nil {
		if slot.raw != nil {
			_ = slot.raw.Close()
		}
		return nil, false, err
	}
	return &conn{c: c, raw: slot.raw}, false, nil
}

// dial connects (with TLS from the start for smtps) and leaves the plain
// connection in the context's dialSlot.
func dial(host string, implicitTLS bool) gomail.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if slot, ok := ctx.Value(dialSlotKey{}).(*dialSlot); ok {
			slot.raw = raw
		}
		if !implicitTLS {
			return raw, nil
		}
		tc := tls.Client(raw, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, err
		}
		return tc, nil
	}
}

// put returns a connection to the pool when it is still in step with the
// server (ok); dirty means a transaction was refused half-way and needs an
// RSET first (a completed DATA leaves the session clean by itself).
func (s *SMTP) put(cn *conn, ok, dirty bool) {
	cn.used++
	if ok && cn.used < s.MaxUses {
		if !dirty || cn.c.Reset() == nil {
			cn.at = time.Now()
			s.mu.Lock()
			if len(s.idle) < s.MaxIdle {
				s.idle = append(s.idle, cn)
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
		}
	}
	_ = cn.c.Quit()
	_ = cn.c.Close()
}

// Close closes the idle connections.
func (s *SMTP) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, cn := range idle {
		_ = cn.c.Quit()
		_ = cn.c.Close()
	}
	return nil
}

func (s *SMTP) build(m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(s.From); err != nil {
		return nil, fmt.Errorf("from address: %w", err)
	}
	if m.ToName != "" {
		if err := msg.AddToFormat(m.ToName, m.To); err != nil {
			return nil, fmt.Errorf("to address: %w", err)
		}
	} else if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("to address: %w", err)
	}
	msg.Subject(m.Subject)
	for k, v := range m.Headers {
		msg.SetGenHeader(gomail.Header(k), v)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	return msg, nil
}

// Log records that a message would have been sent, without its body or
// links (they carry tokens).
type Log struct{ Logger *slog.Logger }

// Send logs the message's recipient domain and subject.
func (l Log) Send(_ context.Context, m Message, h *Handoff) error {
	if err := h.hold(); err != nil {
		return fmt.Errorf("%w: %w", ErrAbandoned, err)
	}
	if err := h.commit(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnrecorded, err)
	}
	domain := m.To
	if i := strings.LastIndexByte(m.To, '@'); i >= 0 {
		domain = m.To[i+1:]
	}
	l.Logger.Info("email not sent: SMTP_URL is unset", "to_domain", domain, "subject", m.Subject)
	return nil
}
