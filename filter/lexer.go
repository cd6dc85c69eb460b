package filter

import (
	"fmt"
	"strings"
)

// Pos is where a token starts: file name, 1-based line and column (in
// bytes), as error messages print it.
type Pos struct {
	File      string
	Line, Col int
}

func (p Pos) String() string {
	if p.File == "" {
		return fmt.Sprintf("%d:%d", p.Line, p.Col)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is a parse or compile error at a position in the ruleset text.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

func errAt(p Pos, format string, args ...any) *Error {
	return &Error{Pos: p, Msg: fmt.Sprintf(format, args...)}
}

type tokKind uint8

const (
	tEOF     tokKind = iota
	tWord            // identifiers, numbers, addresses, prefixes, ranges, rates
	tString          // "quoted", without the quotes
	tSetRef          // @name, without the @
	tNewline         // ends a statement, like ';'
	tSemi
	tLBrace
	tRBrace
	tLParen
	tRParen
	tComma
	tAssign // =
	tEq     // ==
	tNe     // !=
	tLt
	tGt
	tLe
	tGe
	tAmp
	tPipe
	tPlus
)

var tokText = [...]string{
	tEOF: "end of input", tWord: "word", tString: "string", tSetRef: "set reference",
	tNewline: "newline", tSemi: "';'", tLBrace: "'{'", tRBrace: "'}'", tLParen: "'('",
	tRParen: "')'", tComma: "','", tAssign: "'='", tEq: "'=='", tNe: "'!='",
	tLt: "'<'", tGt: "'>'", tLe: "'<='", tGe: "'>='", tAmp: "'&'", tPipe: "'|'", tPlus: "'+'",
}

type token struct {
	kind tokKind
	text string
	pos  Pos
}

func (t token) String() string {
	switch t.kind {
	case tWord:
		return fmt.Sprintf("%q", t.text)
	case tString:
		return fmt.Sprintf("string %q", t.text)
	case tSetRef:
		return "@" + t.text
	}
	return tokText[t.kind]
}

// Word characters cover everything nft writes unquoted: names with
// dashes (echo-request), addresses and prefixes (192.0.2.0/24,
// 2001:db8::/32), ranges (1000-2000), rates (10/second), wildcards (eth*).
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == ':' || c == '/' || c == '*'
}

// lex splits src into tokens. Comments (#) run to the end of the line;
// a backslash before a newline joins the two lines.
func lex(file, src string) ([]token, error) {
	var toks []token
	line, col := 1, 1
	i := 0
	adv := func(n int) {
		for k := 0; k < n; k++ {
			if src[i] == '\n' {
				line++
				col = 1
			} else {
				col++
			}
			i++
		}
	}
	for i < len(src) {
		c := src[i]
		pos := Pos{file, line, col}
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			adv(1)
		case c == '\\' && i+1 < len(src) && src[i+1] == '\n':
			adv(2)
		case c == '\\' && i+2 < len(src) && src[i+1] == '\r' && src[i+2] == '\n':
			adv(3)
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				adv(1)
			}
		case c == '\n':
			toks = append(toks, token{tNewline, "", pos})
			adv(1)
		case c == '"':
			j := strings.IndexAny(src[i+1:], "\"\n")
			if j < 0 || src[i+1+j] != '"' {
				return nil, errAt(pos, "unterminated string")
			}
			toks = append(toks, token{tString, src[i+1 : i+1+j], pos})
			adv(j + 2)
		case c == '@':
			j := i + 1
			for j < len(src) && isWordByte(src[j]) {
				j++
			}
			if j == i+1 {
				return nil, errAt(pos, "'@' without a set name")
			}
			toks = append(toks, token{tSetRef, src[i+1 : j], pos})
			adv(j - i)
		case isWordByte(c):
			j := i
			for j < len(src) && isWordByte(src[j]) {
				j++
			}
			toks = append(toks, token{tWord, src[i:j], pos})
			adv(j - i)
		default:
			k, n := punct(src[i:])
			if n == 0 {
				return nil, errAt(pos, "unexpected character %q", c)
			}
			toks = append(toks, token{k, src[i : i+n], pos})
			adv(n)
		}
	}
	toks = append(toks, token{tEOF, "", Pos{file, line, col}})
	return toks, nil
}

func punct(s string) (tokKind, int) {
	if len(s) >= 2 {
		switch s[:2] {
		case "==":
			return tEq, 2
		case "!=":
			return tNe, 2
		case "<=":
			return tLe, 2
		case ">=":
			return tGe, 2
		}
	}
	switch s[0] {
	case ';':
		return tSemi, 1
	case '{':
		return tLBrace, 1
	case '}':
		return tRBrace, 1
	case '(':
		return tLParen, 1
	case ')':
		return tRParen, 1
	case ',':
		return tComma, 1
	case '=':
		return tAssign, 1
	case '<':
		return tLt, 1
	case '>':
		return tGt, 1
	case '&':
		return tAmp, 1
	case '|':
		return tPipe, 1
	case '+':
		return tPlus, 1
	}
	return 0, 0
}
