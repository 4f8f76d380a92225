// Package mail sends email: through SMTP, or into the log when no SMTP
// server is configured (development).
package mail

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
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
	Send(ctx context.Context, m Message) error
}

// SMTP sends through an SMTP server given as smtp://[user:pass@]host:port
// (smtps:// for implicit TLS).
type SMTP struct {
	From string
	host string
	opts []gomail.Option
}

// NewSMTP parses rawURL and prepares a client; it connects per message.
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
	opts := []gomail.Option{
		gomail.WithPort(port),
		gomail.WithTimeout(15 * time.Second),
	}
	if u.Scheme == "smtps" {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		opts = append(opts,
			gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(u.User.Username()),
			gomail.WithPassword(pass))
	}
	if _, err := gomail.NewClient(u.Hostname(), opts...); err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	return &SMTP{From: from, host: u.Hostname(), opts: opts}, nil
}

// Send delivers one message. Each send has its own client: a shared
// go-mail client serialises sends behind one connection.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	client, err := gomail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	msg := gomail.NewMsg()
	if err := msg.From(s.From); err != nil {
		return fmt.Errorf("from address: %w", err)
	}
	if m.ToName != "" {
		if err := msg.AddToFormat(m.ToName, m.To); err != nil {
			return fmt.Errorf("to address: %w", err)
		}
	} else if err := msg.To(m.To); err != nil {
		return fmt.Errorf("to address: %w", err)
	}
	msg.Subject(m.Subject)
	for k, v := range m.Headers {
		msg.SetGenHeader(gomail.Header(k), v)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp send: %w", err)
	}
	return nil
}

// Log records that a message would have been sent, without its body or
// links (they carry tokens).
type Log struct{ Logger *slog.Logger }

// Send logs the message's recipient domain and subject.
func (l Log) Send(_ context.Context, m Message) error {
	domain := m.To
	if i := strings.LastIndexByte(m.To, '@'); i >= 0 {
		domain = m.To[i+1:]
	}
	l.Logger.Info("email not sent: SMTP_URL is unset", "to_domain", domain, "subject", m.Subject)
	return nil
}
