package xks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Credential is a SigV4 credential the proxy accepts (AWS's
// XksProxyAuthenticationCredential). A proxy may accept several at once,
// which is how a credential is rotated.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
}

// MaxClockSkew is how far a request's X-Amz-Date may be from the proxy's
// clock, either way (the specification's Appendix A, Task 4).
const MaxClockSkew = 5 * time.Minute

// authError is why a signature was refused: for the proxy's log, never
// for the answer, which only says AuthenticationFailedException.
type authError string

func (e authError) Error() string { return "xks: sigv4: " + string(e) }

// verifySigV4 checks r's SigV4 signature (service kms-xks-proxy, region
// region unless region is empty) over body, with one of creds, and
// returns the access key ID. The canonical URI is the request's path as
// sent, escaped once more, as SigV4 does for every service but S3 (and as
// the AWS SDKs sign); the query must be empty. Written
// here rather than shared with kms/kmsapi, whose verifier is bound to the
// KMS JSON protocol (the path "/", service "kms", its exceptions).
func verifySigV4(r *http.Request, body []byte, creds []Credential, region string, now time.Time) (string, error) {
	auth := r.Header.Values("Authorization")
	if len(auth) != 1 {
		return "", authError("no single Authorization header")
	}
	alg, rest, _ := strings.Cut(auth[0], " ")
	if alg != "AWS4-HMAC-SHA256" {
		return "", authError("not AWS4-HMAC-SHA256")
	}
	var cred, signed, sig string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		var dst *string
		switch k {
		case "Credential":
			dst = &cred
		case "SignedHeaders":
			dst = &signed
		case "Signature":
			dst = &sig
		}
		if !ok || dst == nil || *dst != "" || v == "" {
			return "", authError("malformed Authorization header")
		}
		*dst = v
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || signed == "" || len(sig) != 64 || scope[4] != "aws4_request" {
		return "", authError("malformed Authorization header")
	}
	akid, day, reg, service := scope[0], scope[1], scope[2], scope[3]
	if service != SigV4ServiceName {
		return "", authError("service is not " + SigV4ServiceName)
	}
	if region != "" && reg != region {
		return "", authError("region is not " + region)
	}
	var secret string
	for _, c := range creds {
		if c.AccessKeyID == akid {
			secret = c.SecretAccessKey
		}
	}
	if secret == "" {
		return "", authError("unknown access key ID")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || !strings.HasPrefix(amzDate, day) || len(day) != 8 {
		return "", authError("X-Amz-Date missing or not the credential's day")
	}
	if d := now.Sub(t); d > MaxClockSkew || -d > MaxClockSkew {
		return "", authError("X-Amz-Date more than 5 minutes from the proxy's clock")
	}
	names := strings.Split(signed, ";")
	if !slices.IsSorted(names) || !slices.Contains(names, "host") || !slices.Contains(names, "x-amz-date") {
		return "", authError("SignedHeaders must be sorted and include host and x-amz-date")
	}
	if r.URL.RawQuery != "" {
		return "", authError("query string not empty")
	}
	var canon strings.Builder
	canon.WriteString(r.Method + "\n" + escapePath(r.URL.EscapedPath()) + "\n\n")
	for i, n := range names {
		if n == "" || n != strings.ToLower(n) || (i > 0 && names[i-1] == n) {
			return "", authError("malformed SignedHeaders")
		}
		v := r.Header.Values(http.CanonicalHeaderKey(n))
		switch {
		case n == "host":
			v = []string{r.Host}
		case n == "content-length" && len(v) == 0 && r.ContentLength >= 0:
			v = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
		if len(v) == 0 {
			return "", authError("signed header " + n + " missing")
		}
		// Trimmed into the canonical request, not in place: v is the
		// request's own header slice.
		canon.WriteString(n + ":")
		for j, x := range v {
			if j > 0 {
				canon.WriteByte(',')
			}
			canon.WriteString(strings.Join(strings.Fields(x), " "))
		}
		canon.WriteByte('\n')
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payload {
		return "", authError("X-Amz-Content-Sha256 is not the body's hash")
	}
	canon.WriteString("\n" + signed + "\n" + payload)
	creq := sha256.Sum256([]byte(canon.String()))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + strings.Join(scope[1:], "/") + "\n" + hex.EncodeToString(creq[:])
	k := hmacSHA256([]byte("AWS4"+secret), day)
	k = hmacSHA256(k, reg)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(k, toSign))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return "", authError("signature does not match")
	}
	return akid, nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// escapePath percent-encodes every byte of p but the unreserved ones and
// '/' (upper-case hex), as SigV4's canonical URI does.
func escapePath(p string) string {
	const hexdig = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' || c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdig[c>>4])
		b.WriteByte(hexdig[c&15])
	}
	return b.String()
}
