package alerts

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

func TestRuleValidate(t *testing.T) {
	ok := Rule{Name: "x", Metric: "m", Op: ">", Threshold: 1}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid rule: %v", err)
	}
	for _, tc := range []struct {
		edit func(r *Rule)
		want string
	}{
		{func(r *Rule) { r.Op = "=>" }, `alerts: rule "x": op "=>": want one of >, >=, <, <=, ==, !=`},
		{func(r *Rule) { r.Op = "" }, `alerts: rule "x": op "": want one of`},
		{func(r *Rule) { r.Name = "" }, `alerts: rule "": name is empty: every rule needs a unique name`},
		{func(r *Rule) { r.Metric = "" }, `alerts: rule "x": metric is empty: want a dotted metric name such as latency.e2e.p99`},
		{func(r *Rule) { r.Threshold = math.NaN() }, `alerts: rule "x": threshold = NaN: want a finite number`},
		{func(r *Rule) { r.Threshold = math.Inf(1) }, `alerts: rule "x": threshold = +Inf: want a finite number`},
		{func(r *Rule) { r.For = -time.Second }, `alerts: rule "x": for = -1s: want ≥ 0`},
		{func(r *Rule) { r.ResolveAfter = -time.Second }, `alerts: rule "x": resolve_after = -1s: want ≥ 0`},
		{func(r *Rule) { r.Severity = "fatal" }, `alerts: rule "x": severity "fatal": want info, warning or critical`},
		{func(r *Rule) { r.Clear = new(2.0) }, `alerts: rule "x": clear = 2 is above threshold = 1: with op > the alert clears below its threshold`},
		{func(r *Rule) { r.Op, r.Clear = "<=", new(0.5) }, `alerts: rule "x": clear = 0.5 is below threshold = 1: with op <= the alert clears above`},
		{func(r *Rule) { r.Op, r.Clear = "==", new(1.0) }, `alerts: rule "x": clear is set but op == has no side to clear to: remove clear`},
		{func(r *Rule) { r.Clear = new(math.NaN()) }, `alerts: rule "x": clear = NaN: want a finite number`},
	} {
		r := ok
		tc.edit(&r)
		err := r.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", r, err, tc.want)
		}
	}
	for _, good := range []Rule{
		{Name: "a", Metric: "m", Op: ">=", Threshold: 1, Clear: new(1.0)},
		{Name: "b", Metric: "m", Op: "<", Threshold: 1, Clear: new(3.0), Severity: SeverityInfo},
		{Name: "c", Metric: "m", Op: "!=", Threshold: 0, Severity: SeverityCritical, For: time.Second},
	} {
		if err := good.Validate(); err != nil {
			t.Errorf("%+v: %v", good, err)
		}
	}
}

func TestNewValidatesAllRules(t *testing.T) {
	_, err := New(Options{Rules: []Rule{
		{Name: "a", Metric: "m", Op: ">", Threshold: 1},
		{Name: "a", Metric: "m", Op: "<", Threshold: 1},
		{Metric: "m", Op: "~", Threshold: 1},
		{Name: "d", Metric: "m", Op: ">", Threshold: 1, Severity: "loud"},
	}})
	if err == nil {
		t.Fatal("New accepted bad rules")
	}
	for _, want := range []string{
		`alerts: rules[1]: name "a" is also the name of rules[0]: rule names must be unique`,
		`alerts: rules[2]: name is empty`,
		`alerts: rules[2]: op "~": want one of`,
		`alerts: rule "d": severity "loud"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if e, err := New(Options{}); err != nil || e.Firing() != nil || len(e.Rules()) != 0 {
		t.Errorf("New(Options{}) = %v, %v", e, err)
	}
}

func TestRuleYAML(t *testing.T) {
	src := `
- name: e2e_latency
  metric: latency.e2e.p99
  op: ">"
  threshold: 250
  clear: 200
  for: 30s
  resolve_after: 1m
  severity: critical
  message: end-to-end p99 above 250ms
  action: look for slow consumers
- name: no_traffic
  metric: messages.in_per_s
  op: "<"
  threshold: 1
`
	var rules []Rule
	if err := yaml.UnmarshalWithOptions([]byte(src), &rules, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	r := rules[0]
	if r.Name != "e2e_latency" || r.Metric != "latency.e2e.p99" || r.Op != ">" || r.Threshold != 250 ||
		r.Clear == nil || *r.Clear != 200 || r.For != 30*time.Second || r.ResolveAfter != time.Minute ||
		r.Severity != SeverityCritical || r.Message == "" || r.Action == "" {
		t.Errorf("rules[0] = %+v", r)
	}
	if r := rules[1]; r.Clear != nil || r.For != 0 || r.Severity != "" {
		t.Errorf("rules[1] = %+v", r)
	}
	if _, err := New(Options{Rules: rules}); err != nil {
		t.Error(err)
	}
	var bad []Rule
	if err := yaml.UnmarshalWithOptions([]byte("- name: x\n  treshold: 3\n"), &bad, yaml.Strict()); err == nil {
		t.Error("a misspelt field was accepted")
	}
}
