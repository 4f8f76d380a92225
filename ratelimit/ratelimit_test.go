package ratelimit

import (
	"net/http/httptest"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted, err := ParsePrefixes("10.0.0.0/8, 192.168.1.1, fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, peer, xff, want string
	}{
		{"untrusted-peer-ignores-header", "203.0.113.9:4000", "198.51.100.1", "203.0.113.9"},
		{"no-header", "10.1.2.3:4000", "", "10.1.2.3"},
		{"trusted-peer-uses-client", "10.1.2.3:4000", "198.51.100.1", "198.51.100.1"},
		{"forged-left-entries-ignored", "10.1.2.3:4000", "1.1.1.1, 198.51.100.1", "198.51.100.1"},
		{"chain-of-trusted-proxies", "10.1.2.3:4000", "198.51.100.1, 10.9.9.9, 192.168.1.1", "198.51.100.1"},
		{"all-trusted-falls-back-to-peer", "10.1.2.3:4000", "10.2.2.2", "10.1.2.3"},
		{"garbage-stops-the-walk", "10.1.2.3:4000", "198.51.100.1, not-an-ip", "10.1.2.3"},
		{"bare-ip-prefix", "192.168.1.1:80", "198.51.100.7", "198.51.100.7"},
		{"neighbour-of-bare-ip-untrusted", "192.168.1.2:80", "198.51.100.7", "192.168.1.2"},
		{"ipv6-peer", "[fd00::1]:443", "2001:db8::5", "2001:db8::5"},
		{"ipv6-untrusted", "[2001:db8::9]:443", "198.51.100.1", "2001:db8::9"},
		{"mapped-ipv4", "[::ffff:10.0.0.1]:80", "198.51.100.3", "198.51.100.3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.peer
			if c.xff != "" {
				r.Header.Set("X-Forwarded-For", c.xff)
			}
			if got := ClientIP(r, trusted).String(); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestParsePrefixes(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		fail bool
	}{
		{"", 0, false},
		{"10.0.0.0/8", 1, false},
		{" 10.0.0.0/8 , 172.16.0.0/12,::1 ", 3, false},
		{"10.0.0.1/8", 1, false}, // masked to 10.0.0.0/8
		{"10.0.0.0/33", 0, true},
		{"example.com", 0, true},
		{"10.0.0.0/8;1.2.3.4", 0, true},
	}
	for _, c := range cases {
		got, err := ParsePrefixes(c.in)
		if (err != nil) != c.fail || len(got) != c.n {
			t.Errorf("%q: %v %v", c.in, got, err)
		}
	}
}
