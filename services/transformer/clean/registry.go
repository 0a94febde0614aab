// Package clean is the library of cleaning functions a mapping spec can chain
// on a column (issue 4). A function is compiled once from its name and
// arguments, which are all validated up front, and then applied per value
// with no further parsing of the arguments.
//
// Contract of every Func:
//   - Apply(in, dst) appends the cleaned text form of in to dst and returns
//     the extended slice. It never retains in or dst, and in must not share
//     memory with dst's spare capacity.
//   - The output is in PostgreSQL's input syntax (ISO dates, RFC 3339
//     timestamps with offset, canonical decimals), so the transformer's casts
//     take it from there.
//   - On failure it returns dst unchanged and an error wrapping ErrBadValue
//     whose message names the offending value and is fit for a quarantine
//     reason (the caller prefixes the column). Ambiguous or impossible input
//     is an error, never a silent choice.
//   - NULL: a Func never sees a NULL input (a NULL value bypasses the chain and
//     stays NULL). A Func that turns a value into NULL (empty_to_null) returns
//     ErrNull: not a failure, the caller stores NULL and records no reject.
//     A Chain stops at the first ErrNull and returns it.
//   - Compiled Funcs are immutable and safe for concurrent use.
package clean

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Sentinel errors; every error of this package wraps exactly one of them.
var (
	// ErrUnknownFunction is a function name no family registered.
	ErrUnknownFunction = errors.New("unknown cleaning function")
	// ErrBadArgument is a missing, unknown or invalid argument at compile time.
	ErrBadArgument = errors.New("bad argument")
	// ErrBadValue is a value a function cannot clean: the row is quarantined.
	ErrBadValue = errors.New("bad value")
	// ErrNull is not a failure: the function's result is SQL NULL.
	ErrNull = errors.New("value is NULL")
)

// Func is one compiled cleaning function.
type Func interface {
	Apply(in, dst []byte) ([]byte, error)
}

// factory compiles a function from its arguments.
type factory func(a *Args) (Func, error)

var registry = map[string]factory{}

// register is called from the init of each family's file.
func register(name string, f factory) {
	if _, dup := registry[name]; dup {
		panic("clean: function " + name + " registered twice")
	}
	registry[name] = f
}

// Names lists the known functions, sorted, for error messages and docs.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Compile builds the function name with args. Errors name the function and
// the argument at fault and wrap ErrUnknownFunction or ErrBadArgument; an
// argument the function does not know is an error, not ignored.
func Compile(name string, args map[string]string) (Func, error) {
	f, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownFunction, name, strings.Join(Names(), ", "))
	}
	a := &Args{fn: name, m: args}
	fn, err := f(a)
	if err != nil {
		return nil, err
	}
	if err := a.unused(); err != nil {
		return nil, err
	}
	return fn, nil
}

// ArgError is a compile-time argument problem; its message starts with the
// function and the argument so a spec author can find the line.
type ArgError struct {
	Func, Arg, Msg string
}

func (e *ArgError) Error() string {
	if e.Arg == "" {
		return e.Func + ": " + e.Msg
	}
	return e.Func + ": argument " + strconv.Quote(e.Arg) + ": " + e.Msg
}

// Unwrap makes errors.Is(err, ErrBadArgument) hold.
func (e *ArgError) Unwrap() error { return ErrBadArgument }

// valueError is a per-value failure; only rejected rows pay for it.
type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }
func (e *valueError) Unwrap() error { return ErrBadValue }

func badValue(format string, v ...any) error {
	return &valueError{fmt.Sprintf(format, v...)}
}

// Args gives a factory typed access to its arguments and remembers which
// ones it asked for, so that Compile can refuse the rest.
type Args struct {
	fn    string
	m     map[string]string
	asked []string
}

func (a *Args) ask(name string) (string, bool) {
	if !slices.Contains(a.asked, name) {
		a.asked = append(a.asked, name)
	}
	v, ok := a.m[name]
	return v, ok
}

// Errorf is an ArgError for argument name.
func (a *Args) Errorf(name, format string, v ...any) error {
	return &ArgError{Func: a.fn, Arg: name, Msg: fmt.Sprintf(format, v...)}
}

// Has reports whether name was given.
func (a *Args) Has(name string) bool {
	_, ok := a.ask(name)
	return ok
}

// String is the argument or def when absent.
func (a *Args) String(name, def string) string {
	if v, ok := a.ask(name); ok {
		return v
	}
	return def
}

// Required is the argument; absent or empty is an error.
func (a *Args) Required(name string) (string, error) {
	v, ok := a.ask(name)
	if !ok || v == "" {
		return "", a.Errorf(name, "is required")
	}
	return v, nil
}

// Int is the argument as an integer in [lo, hi], or def when absent.
func (a *Args) Int(name string, def, lo, hi int) (int, error) {
	v, ok := a.ask(name)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, a.Errorf(name, "want an integer in %d..%d, got %q", lo, hi, v)
	}
	return n, nil
}

// Bool is the argument as true/false, or def when absent.
func (a *Args) Bool(name string, def bool) (bool, error) {
	v, ok := a.ask(name)
	if !ok {
		return def, nil
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "1":
		return true, nil
	case "false", "no", "0":
		return false, nil
	}
	return false, a.Errorf(name, "want true or false, got %q", v)
}

// OneOf is the argument, which must be one of allowed, or def when absent.
func (a *Args) OneOf(name, def string, allowed ...string) (string, error) {
	v, ok := a.ask(name)
	if !ok {
		return def, nil
	}
	if !slices.Contains(allowed, v) {
		return "", a.Errorf(name, "want one of %s, got %q", strings.Join(allowed, "|"), v)
	}
	return v, nil
}

func (a *Args) unused() error {
	var extra []string
	for k := range a.m {
		if !slices.Contains(a.asked, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	slices.Sort(extra)
	known := slices.Clone(a.asked)
	slices.Sort(known)
	msg := "takes no arguments"
	if len(known) > 0 {
		msg = "takes " + strings.Join(known, ", ")
	}
	return a.Errorf(extra[0], "unknown argument (%s)", msg)
}

// SplitList splits a list argument on sep; a backslash escapes sep or
// itself, so a code containing '|' can still be listed ("a\|b|c").
func SplitList(s string, sep byte) []string {
	var out []string
	var cur []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (s[i+1] == sep || s[i+1] == '\\'):
			cur = append(cur, s[i+1])
			i++
		case c == sep:
			out = append(out, string(cur))
			cur = cur[:0]
		default:
			cur = append(cur, c)
		}
	}
	return append(out, string(cur))
}

// Step is one (name, args) entry of a chain as a spec lists it.
type Step struct {
	Name string
	Args map[string]string
}

// Chain applies compiled functions in order. It is itself a Func.
type Chain struct {
	names []string
	funcs []Func
	pool  sync.Pool // *[2][]byte ping-pong buffers, reused across values
}

// CompileChain compiles every step; an error names the step
// (`step 2 (date): ...`, counting from 1).
func CompileChain(steps []Step) (*Chain, error) {
	c := &Chain{}
	for i, s := range steps {
		f, err := Compile(s.Name, s.Args)
		if err != nil {
			return nil, fmt.Errorf("step %d (%s): %w", i+1, s.Name, err)
		}
		c.names = append(c.names, s.Name)
		c.funcs = append(c.funcs, f)
	}
	c.pool.New = func() any { return new([2][]byte) }
	return c, nil
}

// Len is the number of steps.
func (c *Chain) Len() int { return len(c.funcs) }

// Apply runs the steps in order and appends the result to dst. A failure
// names its step (`step 2 (date): ambiguous day/month: ...`) and still
// wraps ErrBadValue; ErrNull is returned unwrapped.
func (c *Chain) Apply(in, dst []byte) ([]byte, error) {
	if len(c.funcs) == 0 {
		return append(dst, in...), nil
	}
	if len(c.funcs) == 1 {
		return c.step(0, in, dst)
	}
	bufs := c.pool.Get().(*[2][]byte)
	defer c.pool.Put(bufs)
	cur := in
	last := len(c.funcs) - 1
	for i := range last {
		out, err := c.step(i, cur, bufs[i%2][:0])
		if err != nil {
			return dst, err
		}
		bufs[i%2] = out
		cur = out
	}
	return c.step(last, cur, dst)
}

func (c *Chain) step(i int, in, dst []byte) ([]byte, error) {
	out, err := c.funcs[i].Apply(in, dst)
	if err != nil {
		if err == ErrNull {
			return dst, ErrNull
		}
		return dst, fmt.Errorf("step %d (%s): %w", i+1, c.names[i], err)
	}
	return out, nil
}

// quoteValue quotes a value for an error message, cut to 64 bytes on a rune
// boundary so that a huge value cannot flood a quarantine reason.
func quoteValue(v []byte) string {
	const limit = 64
	if len(v) <= limit {
		return strconv.Quote(string(v))
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return strconv.Quote(string(v[:cut])) + "…"
}
