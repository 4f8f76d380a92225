package mail

import "testing"

// appendDotted ends every line in CRLF, doubles a leading ".", ends the
// last line, and keeps what dst held.
func TestAppendDotted(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"a", "a\r\n"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb", "a\r\nb\r\n"},
		{".", "..\r\n"},
		{"x\n.\n..y\n", "x\r\n..\r\n...y\r\n"},
		{"\n\n", "\r\n\r\n"},
		{"a.\r\n.b\r\n", "a.\r\n..b\r\n"},
	} {
		if got := string(appendDotted([]byte("DATA:"), []byte(tc.in))); got != "DATA:"+tc.want {
			t.Errorf("appendDotted(%q) = %q, want %q", tc.in, got, "DATA:"+tc.want)
		}
	}
}
