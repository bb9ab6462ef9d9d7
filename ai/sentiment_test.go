package ai

import (
	"testing"
)

// vaderCases are the examples of vaderSentiment's README and its
// __main__ demo with the scores the reference Python implementation
// (3.3.2) prints for them (also the cases govader checks against it).
var vaderCases = []struct {
	text string
	want Sentiment
}{
	{"VADER is smart, handsome, and funny.", Sentiment{Compound: 0.8316, Pos: 0.746, Neg: 0, Neu: 0.254}},
	{"VADER is smart, handsome, and funny!", Sentiment{Compound: 0.8439, Pos: 0.752, Neg: 0, Neu: 0.248}},
	{"VADER is very smart, handsome, and funny.", Sentiment{Compound: 0.8545, Pos: 0.701, Neg: 0, Neu: 0.299}},
	{"VADER is VERY SMART, handsome, and FUNNY.", Sentiment{Compound: 0.9227, Pos: 0.754, Neg: 0, Neu: 0.246}},
	{"VADER is VERY SMART, handsome, and FUNNY!!!", Sentiment{Compound: 0.9342, Pos: 0.767, Neg: 0, Neu: 0.233}},
	{"VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!", Sentiment{Compound: 0.9469, Pos: 0.706, Neg: 0, Neu: 0.294}},
	{"VADER is not smart, handsome, nor funny.", Sentiment{Compound: -0.7424, Pos: 0, Neg: 0.646, Neu: 0.354}},
	{"The book was good.", Sentiment{Compound: 0.4404, Pos: 0.492, Neg: 0, Neu: 0.508}},
	{"At least it isn't a horrible book.", Sentiment{Compound: 0.431, Pos: 0.322, Neg: 0, Neu: 0.678}},
	{"The book was only kind of good.", Sentiment{Compound: 0.3832, Pos: 0.303, Neg: 0, Neu: 0.697}},
	{"The plot was good, but the characters are uncompelling and the dialog is not great.", Sentiment{Compound: -0.7042, Pos: 0.094, Neg: 0.327, Neu: 0.579}},
	{"Today SUX!", Sentiment{Compound: -0.5461, Pos: 0, Neg: 0.779, Neu: 0.221}},
	{"Today only kinda sux! But I'll get by, lol", Sentiment{Compound: 0.5249, Pos: 0.317, Neg: 0.127, Neu: 0.556}},
	{"Make sure you :) or :D today!", Sentiment{Compound: 0.8633, Pos: 0.706, Neg: 0, Neu: 0.294}},
	{"Catch utf-8 emoji such as such as 💘 and 💋 and 😁", Sentiment{Compound: 0.7003, Pos: 0.254, Neg: 0, Neu: 0.746}},
	{"Not bad at all", Sentiment{Compound: 0.431, Pos: 0.487, Neg: 0, Neu: 0.513}},
	{"Sentiment analysis has never been good.", Sentiment{Compound: -0.3412, Pos: 0, Neg: 0.325, Neu: 0.675}},
	{"Sentiment analysis has never been this good!", Sentiment{Compound: 0.5672, Pos: 0.379, Neg: 0, Neu: 0.621}},
	{"Most automated sentiment analysis tools are shit.", Sentiment{Compound: -0.5574, Pos: 0, Neg: 0.375, Neu: 0.625}},
	{"With VADER, sentiment analysis is the shit!", Sentiment{Compound: 0.6476, Pos: 0.417, Neg: 0, Neu: 0.583}},
	{"Other sentiment analysis tools can be quite bad.", Sentiment{Compound: -0.5849, Pos: 0, Neg: 0.351, Neu: 0.649}},
	{"On the other hand, VADER is quite bad ass", Sentiment{Compound: 0.802, Pos: 0.577, Neg: 0, Neu: 0.423}},
	{"VADER is such a badass!", Sentiment{Compound: 0.4003, Pos: 0.402, Neg: 0, Neu: 0.598}},
	{"Without a doubt, excellent idea.", Sentiment{Compound: 0.7013, Pos: 0.659, Neg: 0, Neu: 0.341}},
	{"Roger Dodger is one of the most compelling variations on this theme.", Sentiment{Compound: 0.2944, Pos: 0.166, Neg: 0, Neu: 0.834}},
	{"Roger Dodger is at least compelling as a variation on the theme.", Sentiment{Compound: 0.2263, Pos: 0.147, Neg: 0, Neu: 0.853}},
	{"Roger Dodger is one of the least compelling variations on this theme.", Sentiment{Compound: -0.1695, Pos: 0, Neg: 0.132, Neu: 0.868}},
	{"Not such a badass after all.", Sentiment{Compound: -0.2584, Pos: 0, Neg: 0.289, Neu: 0.711}},
	{"Without a doubt, an excellent idea.", Sentiment{Compound: 0.7013, Pos: 0.592, Neg: 0, Neu: 0.408}},
}

func TestVaderReferenceScores(t *testing.T) {
	v := NewVader()
	for _, c := range vaderCases {
		if got := v.Scores(c.text); got != c.want {
			t.Errorf("%q:\n got %+v\nwant %+v", c.text, got, c.want)
		}
	}
}

func TestVaderEdges(t *testing.T) {
	v := NewVader()
	for _, s := range []string{"", "   ", "!!!", "the", "\u00a0"} {
		if got := v.Scores(s); got.Compound != 0 || got.Pos != 0 || got.Neg != 0 {
			t.Errorf("%q: %+v, want neutral", s, got)
		}
	}
	// neutral words only: neu 1
	if got := v.Scores("the table is brown"); got != (Sentiment{Neu: 1}) {
		t.Errorf("neutral text: %+v", got)
	}
	// whitespace of every kind separates words, as Python's str.split
	a, b := v.Scores("good\tgood\ngood"), v.Scores("good good good")
	if a != b {
		t.Errorf("tabs and newlines: %+v vs %+v", a, b)
	}
	// a scorer is reusable: the same text scores the same after others
	first := v.Scores(vaderCases[0].text)
	for _, c := range vaderCases {
		v.Scores(c.text)
	}
	if again := v.Scores(vaderCases[0].text); again != first {
		t.Errorf("reused scorer: %+v, first %+v", again, first)
	}
}

func TestRoundPy(t *testing.T) {
	for _, c := range []struct {
		x    float64
		n    int
		want float64
	}{
		{0.83155, 4, 0.8316}, {0.12345, 3, 0.123}, {-0.74245, 4, -0.7425}, {2.675, 2, 2.67}, // as Python: -0.74245 is -0.742450…01, 2.675 is 2.67499… in binary
		{0.5, 0, 0}, {1.5, 0, 2}, {-0.00001, 3, 0}, // (Python: -0.0; JSON has no -0)
	} {
		if got := roundPy(c.x, c.n); got != c.want {
			t.Errorf("roundPy(%v, %d) = %v, want %v", c.x, c.n, got, c.want)
		}
	}
}

func BenchmarkSentiment(b *testing.B) {
	v := NewVader()
	texts := make([]string, len(vaderCases))
	for i, c := range vaderCases {
		texts[i] = c.text
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		v.Scores(texts[i%len(texts)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "texts/s")
}
