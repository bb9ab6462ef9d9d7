package ai

import (
	"bytes"
	"fmt"
	"regexp"
)

// Rule is one rule of a rule-based classifier. It matches a text when
// every condition it has holds: one of its Keywords appears (whole words,
// case-insensitive; a keyword of several words matches them in a row),
// Regex matches, and the caller's extra condition (Cond) is true.
type Rule struct {
	Label      string
	Keywords   []string
	Regex      *regexp.Regexp
	Cond       bool    // the caller checks an extra condition (an expression)
	Confidence float64 // the confidence a match gives (default 1)
}

// Rules matches texts against rules, first match wins. Build it with
// NewRules; it keeps scratch buffers, so one per goroutine.
type Rules struct {
	rules   []Rule
	single  map[string][]int // one-word keyword → rules having it
	phrases [][][]byte       // per rule: its normalised multi-word keywords
	w       Words
	norm    []byte
	hit     []bool
}

// NewRules compiles rules.
func NewRules(rules []Rule) (*Rules, error) {
	r := &Rules{rules: rules, single: make(map[string][]int), phrases: make([][][]byte, len(rules)), hit: make([]bool, len(rules))}
	for i := range r.rules {
		ru := &r.rules[i]
		if ru.Label == "" {
			return nil, fmt.Errorf("rules[%d]: a rule needs a label", i)
		}
		if len(ru.Keywords) == 0 && ru.Regex == nil && !ru.Cond {
			return nil, fmt.Errorf("rules[%d] (%s): a rule needs keywords, a regex or a condition", i, ru.Label)
		}
		if ru.Confidence == 0 {
			ru.Confidence = 1
		}
		if ru.Confidence < 0 || ru.Confidence > 1 {
			return nil, fmt.Errorf("rules[%d] (%s): confidence %v is not within [0, 1]", i, ru.Label, ru.Confidence)
		}
		for _, kw := range ru.Keywords {
			n := 0
			var last []byte
			r.w.Each(kw, func(word []byte) { n++; last = append(last[:0], word...) })
			switch n {
			case 0:
				return nil, fmt.Errorf("rules[%d] (%s): keyword %q has no letters or digits", i, ru.Label, kw)
			case 1:
				r.single[string(last)] = append(r.single[string(last)], i)
			default:
				r.phrases[i] = append(r.phrases[i], r.w.Normalize(nil, kw))
			}
		}
	}
	return r, nil
}

// Len returns the number of rules.
func (r *Rules) Len() int { return len(r.rules) }

// Rule returns rule i.
func (r *Rules) Rule(i int) *Rule { return &r.rules[i] }

// Match returns the index of the first rule text matches, or -1. cond,
// called only for rules with Cond whose other conditions hold, checks
// the caller's condition of rule i; its error stops the matching (Match
// returns that rule's index with it).
func (r *Rules) Match(text string, cond func(i int) (bool, error)) (int, error) {
	clear(r.hit)
	if len(r.single) > 0 {
		r.w.Each(text, func(word []byte) {
			for _, i := range r.single[string(word)] {
				r.hit[i] = true
			}
		})
	}
	normed := false
	for i := range r.rules {
		ru := &r.rules[i]
		if len(ru.Keywords) > 0 && !r.hit[i] {
			if len(r.phrases[i]) == 0 {
				continue
			}
			if !normed {
				r.norm = r.w.Normalize(r.norm[:0], text)
				normed = true
			}
			found := false
			for _, p := range r.phrases[i] {
				if bytes.Contains(r.norm, p) {
					found = true
					break
				}
			}
			if !found {
				continue
			}
		}
		if ru.Regex != nil && !ru.Regex.MatchString(text) {
			continue
		}
		if ru.Cond && cond != nil {
			ok, err := cond(i)
			if err != nil {
				return i, err
			}
			if !ok {
				continue
			}
		}
		return i, nil
	}
	return -1, nil
}
