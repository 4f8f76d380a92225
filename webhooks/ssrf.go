package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/csat/csat/errs"
)

// blockedPrefixes are ranges a webhook must never reach besides what
// netip's predicates cover: CGNAT (also cloud metadata such as
// 100.100.100.200), benchmarking, documentation, reserved, IPv4/IPv6
// translation (which can embed a private IPv4) and old site-local IPv6.
var blockedPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
		"64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001:db8::/32", "2002::/16", "fec0::/10",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// Blocked reports whether ip is an address a webhook must not reach:
// loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7 including
// fd00::/8), link-local (169.254/16 with the 169.254.169.254 metadata
// service, fe80::/10), multicast, unspecified, CGNAT and reserved ranges.
func Blocked(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// errBlocked is what the dialer answers for a refused address.
var errBlocked = errors.New("address not allowed for webhooks")

// MaxURLLen caps an endpoint URL.
const MaxURLLen = 2048

func badURL(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &errs.Error{Code: errs.Invalid, Message: "url " + msg, Fields: map[string]string{"url": msg}}
}

// CheckURL validates an endpoint URL: http or https with a host, no
// credentials, and, unless allowPrivate, a host that is not and does not
// resolve to a blocked address. The dialer checks again at connect time,
// since DNS may answer differently then.
func CheckURL(ctx context.Context, raw string, allowPrivate bool, resolver *net.Resolver) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", badURL("is required")
	}
	if len(raw) > MaxURLLen {
		return "", badURL("must be at most %d characters", MaxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", badURL("is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", badURL("must start with https:// or http://")
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", badURL("must have a host")
	}
	if u.User != nil {
		return "", badURL("must not contain credentials")
	}
	if u.Fragment != "" {
		return "", badURL("must not contain a fragment")
	}
	if allowPrivate {
		return u.String(), nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if Blocked(ip) {
			return "", badURL("points to a private, loopback, link-local or reserved address")
		}
		return u.String(), nil
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ips, err := resolver.LookupNetIP(rctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return "", badURL("host %q could not be resolved", host)
	}
	for _, ip := range ips {
		if Blocked(ip) {
			return "", badURL("host %q resolves to a private, loopback, link-local or reserved address", host)
		}
	}
	return u.String(), nil
}

// MaxResponseBody is how much of a receiver's answer is read.
const MaxResponseBody = 64 << 10

// NewHTTPClient returns the client deliveries use: no proxy (it would
// bypass the address check), no redirects, a timeout per attempt and,
// unless allowPrivate, a dialer that refuses blocked addresses after DNS
// resolution (so a name that re-resolves to 127.0.0.1 is still refused).
func NewHTTPClient(allowPrivate bool, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || Blocked(ap.Addr()) {
				return errBlocked
			}
			return nil
		}
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    5 * time.Second,
		ResponseHeaderTimeout:  timeout,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
