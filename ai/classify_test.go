package ai

import (
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"
)

func TestWords(t *testing.T) {
	var w Words
	var got []string
	w.Each("Don't STOP—Résumé: 42 naïve e\u0301! 日本", func(b []byte) { got = append(got, string(b)) })
	want := "don t stop résumé 42 naïve e\u0301 日本"
	if strings.Join(got, " ") != want {
		t.Errorf("words %q, want %q", strings.Join(got, " "), want)
	}
	if n := string(w.Normalize(nil, "Hello,  World!")); n != " hello world " {
		t.Errorf("Normalize: %q", n)
	}
}

// TestNaiveBayesTextbook checks the worked example of Manning, Raghavan &
// Schütze, Introduction to Information Retrieval, §13.2 (table 13.1):
// P(c|d5) ∝ 3/4·(3/7)³·1/14·1/14 ≈ 0.0003 and P(j|d5) ∝ 1/4·(2/9)³·2/9·2/9
// ≈ 0.0001, so d5 is "china" with posterior 0.0003/(0.0003+0.0001).
func TestNaiveBayesTextbook(t *testing.T) {
	var m NaiveBayes
	for _, d := range []struct{ label, text string }{
		{"china", "Chinese Beijing Chinese"},
		{"china", "Chinese Chinese Shanghai"},
		{"china", "Chinese Macao"},
		{"japan", "Tokyo Japan Chinese"},
	} {
		if _, err := m.Train(d.label, d.text); err != nil {
			t.Fatal(err)
		}
	}
	label, conf, ok := m.Predict("Chinese Chinese Chinese Tokyo Japan")
	pc := 3.0 / 4 * math.Pow(3.0/7, 3) * (1.0 / 14) * (1.0 / 14)
	pj := 1.0 / 4 * math.Pow(2.0/9, 3) * (2.0 / 9) * (2.0 / 9)
	if !ok || label != "china" || math.Abs(conf-pc/(pc+pj)) > 1e-12 {
		t.Errorf("got %q %v %v, want china %v", label, conf, ok, pc/(pc+pj))
	}
	// unknown words are ignored: only the priors speak
	label, conf, _ = m.Predict("nothing known here")
	if label != "china" || math.Abs(conf-0.75) > 1e-12 {
		t.Errorf("unknown words: %q %v", label, conf)
	}
	if d, tok := m.LabelStats("china"); d != 3 || tok != 8 {
		t.Errorf("china stats %d %d", d, tok)
	}
	if m.Docs() != 4 || strings.Join(m.Labels(), ",") != "china,japan" {
		t.Errorf("docs %d labels %v", m.Docs(), m.Labels())
	}
}

func TestNaiveBayesUntrainedAndBadLabels(t *testing.T) {
	var m NaiveBayes
	if _, _, ok := m.Predict("anything"); ok {
		t.Error("an untrained model predicted")
	}
	for _, l := range []string{"", "a\x00b"} {
		if _, err := m.Train(l, "x"); !errors.Is(err, ErrBadLabel) {
			t.Errorf("label %q: %v", l, err)
		}
	}
}

// TestNaiveBayesRestore: a model rebuilt from what Train reported (as the
// classify op persists it) predicts exactly like the original.
func TestNaiveBayesRestore(t *testing.T) {
	var a NaiveBayes
	type key struct{ label, word string }
	saved := map[key]uint32{}
	docs := []struct{ label, text string }{
		{"billing", "my invoice is wrong, refund the charge"},
		{"billing", "charged twice on my card, need a refund"},
		{"tech", "the app crashes when I upload a file"},
		{"tech", "error 500 when I log in to the app"},
		{"billing", "update my card for the next invoice"},
	}
	for _, d := range docs {
		ids, err := a.Train(d.label, d.text)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			saved[key{d.label, a.Word(id)}] = a.Count(d.label, id)
		}
	}
	var b NaiveBayes
	for _, l := range a.Labels() {
		d, tok := a.LabelStats(l)
		if err := b.RestoreLabel(l, d, tok); err != nil {
			t.Fatal(err)
		}
	}
	for k, n := range saved {
		if err := b.RestoreWord(k.label, k.word, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"refund my card", "the app shows an error", "hello", "invoice error"} {
		l1, c1, _ := a.Predict(q)
		l2, c2, _ := b.Predict(q)
		if l1 != l2 || math.Abs(c1-c2) > 1e-12 {
			t.Errorf("%q: original %s %v, restored %s %v", q, l1, c1, l2, c2)
		}
	}
	if l, c, _ := a.Predict("refund my card"); l != "billing" || c < 0.9 {
		t.Errorf("refund my card: %s %v", l, c)
	}
}

func TestNaiveBayesMaxVocab(t *testing.T) {
	m := NaiveBayes{MaxVocab: 2}
	m.Train("a", "one two three four")
	if len(m.words) != 2 {
		t.Errorf("vocabulary %v", m.words)
	}
	if _, tok := m.LabelStats("a"); tok != 2 {
		t.Errorf("tokens %d: words over the cap must not count", tok)
	}
}

func TestRules(t *testing.T) {
	r, err := NewRules([]Rule{
		{Label: "urgent", Keywords: []string{"ASAP", "right now"}},
		{Label: "refund", Regex: regexp.MustCompile(`(?i)refund|money back`), Confidence: 0.9},
		{Label: "vip", Keywords: []string{"order"}, Cond: true},
		{Label: "order", Keywords: []string{"order"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	vip := false
	cond := func(i int) (bool, error) { return vip, nil }
	for _, c := range []struct {
		text string
		vip  bool
		want string
	}{
		{"please fix this asap!", false, "urgent"},
		{"I need it Right   Now.", false, "urgent"},
		{"rightnow", false, ""},
		{"I want my money back", false, "refund"},
		{"where is my order", false, "order"},
		{"where is my order", true, "vip"},
		{"orders", false, ""}, // whole words only
		{"", false, ""},
	} {
		vip = c.vip
		i, err := r.Match(c.text, cond)
		got := ""
		if i >= 0 {
			got = r.Rule(i).Label
		}
		if err != nil || got != c.want {
			t.Errorf("%q (vip %v): %q %v, want %q", c.text, c.vip, got, err, c.want)
		}
	}
	if r.Rule(0).Confidence != 1 || r.Rule(1).Confidence != 0.9 {
		t.Error("confidences")
	}
	boom := errors.New("boom")
	if _, err := r.Match("order", func(int) (bool, error) { return false, boom }); err != boom {
		t.Errorf("cond error: %v", err)
	}
	for _, bad := range [][]Rule{
		{{Keywords: []string{"x"}}},
		{{Label: "a"}},
		{{Label: "a", Keywords: []string{"!!"}}},
		{{Label: "a", Keywords: []string{"x"}, Confidence: 2}},
	} {
		if _, err := NewRules(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestLRU(t *testing.T) {
	c := NewLRU[string, int](2, 10)
	c.Put("a", 1, 0)
	c.Put("b", 2, 0)
	if v, ok := c.Get("a", 1); !ok || v != 1 {
		t.Fatal("a")
	}
	c.Put("c", 3, 2) // evicts b, the least recently used
	if _, ok := c.Get("b", 2); ok {
		t.Error("b not evicted")
	}
	if v, ok := c.Get("c", 2); !ok || v != 3 {
		t.Error("c")
	}
	if _, ok := c.Get("a", 10); ok { // put at 0, TTL 10
		t.Error("a not expired")
	}
	if c.Len() != 1 {
		t.Errorf("len %d", c.Len())
	}
	c.Put("c", 4, 5) // a re-put refreshes the value and the TTL
	if v, ok := c.Get("c", 14); !ok || v != 4 {
		t.Error("c refreshed")
	}
	// no TTL: only evictions end entries
	n := NewLRU[string, string](1, 0)
	n.Put("x", "1", 0)
	if _, ok := n.Get("x", 1<<62); !ok {
		t.Error("no TTL expired")
	}
	// entries are recycled once full
	allocs := testing.AllocsPerRun(100, func() { n.Put("y", "2", 0); n.Put("x", "1", 0) })
	if allocs != 0 {
		t.Errorf("%v allocations per put when full", allocs)
	}
}

func BenchmarkNaiveBayes(b *testing.B) {
	var m NaiveBayes
	train := []struct{ label, text string }{
		{"billing", "my invoice is wrong, please refund the extra charge on my card"},
		{"billing", "I was charged twice this month and need a refund of the second payment"},
		{"tech", "the mobile app crashes every time I try to upload a photo"},
		{"tech", "I get error 500 when I log in from the web dashboard"},
		{"sales", "can I get a quote for 50 seats on the enterprise plan"},
		{"sales", "what discounts do you offer for annual billing of a team plan"},
	}
	for range 50 {
		for _, d := range train {
			m.Train(d.label, d.text)
		}
	}
	q := "hi, the app keeps crashing after the update and I also see a strange charge on my invoice"
	b.ReportAllocs()
	for range b.N {
		m.Predict(q)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "texts/s")
}
