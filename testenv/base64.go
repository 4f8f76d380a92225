package testenv

import (
	"encoding/base64"
	"io"
	"strings"
)

// newBase64 decodes a line-wrapped base64 MIME body.
func newBase64(r io.Reader) io.Reader {
	b, _ := io.ReadAll(r)
	clean := strings.Map(func(c rune) rune {
		if c == '\r' || c == '\n' || c == ' ' {
			return -1
		}
		return c
	}, string(b))
	return base64.NewDecoder(base64.StdEncoding, strings.NewReader(clean))
}
