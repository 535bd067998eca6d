package policy

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// principals is a compiled Principal or NotPrincipal element.
type principals struct {
	any       bool     // "*" or {"AWS": "*"}
	accounts  []string // account IDs, from root ARNs and bare IDs
	arns      []string // other AWS principals, matched exactly
	services  []string // Service principals
	federated []string // Federated principals
}

func parsePrincipal(name string, v any) (principals, error) {
	var p principals
	switch v := v.(type) {
	case string:
		if v != "*" {
			return p, problemf("%s %q is not \"*\" or an object", name, v)
		}
		p.any = true
		return p, nil
	case map[string]any:
		if len(v) == 0 {
			return p, problemf("%s is an empty object", name)
		}
		for _, typ := range sortedKeys(v) {
			list, err := stringList(name+" "+typ, v[typ])
			if err != nil {
				return p, err
			}
			for _, s := range list {
				switch typ {
				case "AWS":
					switch {
					case s == "*":
						p.any = true
					case isAccountID(s):
						p.accounts = append(p.accounts, s)
					default:
						acct, root, ok := principalARN(s)
						if !ok {
							return p, problemf("%s AWS %q is not \"*\", an account ID or an IAM ARN", name, s)
						}
						if root {
							p.accounts = append(p.accounts, acct)
						} else {
							p.arns = append(p.arns, s)
						}
					}
				case "Service", "Federated":
					if !validName(s) {
						return p, problemf("%s %s %q is not a %s principal name", name, typ, s, strings.ToLower(typ))
					}
					if typ == "Service" {
						p.services = append(p.services, s)
					} else {
						p.federated = append(p.federated, s)
					}
				default:
					return p, problemf("%s type %q is not AWS, Service or Federated", name, typ)
				}
			}
		}
		return p, nil
	}
	return p, problemf("%s is not \"*\" or an object", name)
}

// principalARN checks an IAM or STS principal ARN of a 12-digit account,
// without wildcards, and says whether it is the account's root.
func principalARN(s string) (account string, root, ok bool) {
	if !validName(s) {
		return "", false, false
	}
	var parts [6]string
	if !splitARN(s, &parts) || parts[0] != "arn" || parts[1] == "" ||
		(parts[2] != "iam" && parts[2] != "sts") || parts[3] != "" ||
		!isAccountID(parts[4]) || parts[5] == "" {
		return "", false, false
	}
	return parts[4], parts[2] == "iam" && parts[5] == "root", true
}

// validName: non-empty, printable, no white space, no wildcards.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c == '*' || c == '?' || unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}

func (p *principals) match(r *Request) bool {
	if p.any {
		return true
	}
	if len(p.accounts) > 0 {
		if acct := requestAccount(r); acct != "" {
			for _, a := range p.accounts {
				if a == acct {
					return true
				}
			}
		}
	}
	for _, a := range p.arns {
		if a == r.Principal {
			return true
		}
	}
	for _, s := range p.services {
		if s == r.Principal {
			return true
		}
	}
	for _, s := range p.federated {
		if s == r.Principal {
			return true
		}
	}
	return false
}

// requestAccount is r.Account, or the account field of r.Principal's ARN.
func requestAccount(r *Request) string {
	if r.Account != "" {
		return r.Account
	}
	var parts [6]string
	if splitARN(r.Principal, &parts) && parts[0] == "arn" {
		return parts[4]
	}
	return ""
}

// splitARN splits s at its first five colons; false if it has fewer.
func splitARN(s string, parts *[6]string) bool {
	for i := range 5 {
		j := strings.IndexByte(s, ':')
		if j < 0 {
			return false
		}
		parts[i], s = s[:j], s[j+1:]
	}
	parts[5] = s
	return true
}

// matchAny reports whether any pattern matches s.
func matchAny(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if glob(p, s, fold) {
			return true
		}
	}
	return false
}

// glob matches s against pattern p, where * is any run of characters
// (including none) and ? is one character; fold compares case-insensitively.
// Linear backtracking (only the last * is retried), so it runs in
// O(len(p)·len(s)) at worst.
func glob(p, s string, fold bool) bool {
	if p == "*" {
		return true
	}
	px, sx := 0, 0
	nextPx, nextSx := 0, 0 // restart point after the last *; nextSx 0 = none
	for px < len(p) || sx < len(s) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				nextPx = px
				if sx < len(s) {
					_, n := utf8.DecodeRuneInString(s[sx:])
					nextSx = sx + n
				} else {
					nextSx = len(s) + 1
				}
				px++
				continue
			case '?':
				if sx < len(s) {
					_, n := utf8.DecodeRuneInString(s[sx:])
					px++
					sx += n
					continue
				}
			default:
				if sx < len(s) {
					if c < utf8.RuneSelf && s[sx] < utf8.RuneSelf {
						d := s[sx]
						if c == d || fold && lowerASCII(c) == lowerASCII(d) {
							px++
							sx++
							continue
						}
					} else {
						pr, pn := utf8.DecodeRuneInString(p[px:])
						sr, sn := utf8.DecodeRuneInString(s[sx:])
						if pr == sr || fold && unicode.ToLower(pr) == unicode.ToLower(sr) {
							px += pn
							sx += sn
							continue
						}
					}
				}
			}
		}
		if 0 < nextSx && nextSx <= len(s) {
			px = nextPx
			sx = nextSx
			continue
		}
		return false
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
