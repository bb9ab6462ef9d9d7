package pipeline

import (
	"fmt"
	"math"
	"strconv"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// Env is what an expression sees: `data` (the event's data, decoded),
// `key`, `time` (Unix nanoseconds) and `stream`. Field access on data
// is dynamic: `data.relevance_score > 0.7`, `data.user.name`,
// `data.items[0]`.
type Env struct {
	Data   any    `expr:"data"`
	Key    string `expr:"key"`
	Time   int64  `expr:"time"`
	Stream string `expr:"stream"`
}

// Expr is one compiled expression. It reuses its VM and env between runs,
// so it belongs to one node on one flow goroutine (the flow's single
// goroutine is what makes that safe).
type Expr struct {
	Src  string
	prog *vm.Program
	vm   vm.VM
	env  Env
}

// Kinds of result an expression is compiled for.
type exprKind int

const (
	kindAny exprKind = iota
	kindBool
)

// compileExpr compiles src once, at config load.
func compileExpr(src string, kind exprKind) (*Expr, error) {
	opts := []expr.Option{expr.Env(Env{})}
	if kind == kindBool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, err
	}
	return &Expr{Src: src, prog: prog}, nil
}

// run evaluates the expression on ev.
func (x *Expr) run(ev *Event) (any, error) {
	v, err := ev.Value()
	if err != nil {
		return nil, fmt.Errorf("data is not JSON: %w", err)
	}
	x.env = Env{Data: v, Key: ev.Key, Time: ev.Time, Stream: ev.Stream}
	out, err := x.vm.Run(x.prog, &x.env)
	x.env.Data = nil
	return out, err
}

// Bool evaluates a predicate; an error counts as false and is returned.
func (x *Expr) Bool(ev *Event) (bool, error) {
	v, err := x.run(ev)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%q gave %T, not a bool", x.Src, v)
	}
	return b, nil
}

// Float evaluates a number (ints, floats, numeric strings).
func (x *Expr) Float(ev *Event) (float64, error) {
	v, err := x.run(ev)
	if err != nil {
		return math.NaN(), err
	}
	switch n := v.(type) {
	case float64:
		return n, nil
	case int:
		return float64(n), nil
	case int64:
		return float64(n), nil
	case float32:
		return float64(n), nil
	case string:
		return strconv.ParseFloat(n, 64)
	case nil:
		return math.NaN(), fmt.Errorf("%q is null", x.Src)
	}
	return math.NaN(), fmt.Errorf("%q gave %T, not a number", x.Src, v)
}

// String evaluates a key: strings as they are, other values as JSON.
func (x *Expr) String(ev *Event) (string, error) {
	v, err := x.run(ev)
	if err != nil {
		return "", err
	}
	switch s := v.(type) {
	case string:
		return s, nil
	case nil:
		return "", nil
	case float64:
		return string(appendFloat(nil, s)), nil
	}
	b, err := marshal(v)
	return string(b), err
}

// Time evaluates an event-time expression: a number is Unix time in
// milliseconds, a string is RFC 3339.
func (x *Expr) Time(ev *Event) (int64, error) {
	v, err := x.run(ev)
	if err != nil {
		return 0, err
	}
	switch t := v.(type) {
	case float64:
		return int64(t * 1e6), nil
	case int:
		return int64(t) * 1e6, nil
	case int64:
		return t * 1e6, nil
	case string:
		tm, err := parseTime(t)
		return tm, err
	}
	return 0, fmt.Errorf("%q gave %T, not a time (Unix ms or RFC 3339)", x.Src, v)
}

// JSON evaluates to a JSON value.
func (x *Expr) JSON(ev *Event) ([]byte, any, error) {
	v, err := x.run(ev)
	if err != nil {
		return nil, nil, err
	}
	b, err := marshal(v)
	return b, v, err
}
