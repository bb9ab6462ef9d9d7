package ai

import (
	_ "embed"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// VADER (Hutto & Gilbert, ICWSM 2014): a lexicon and rule-based sentiment
// model. This is a compact port of vaderSentiment 3.3.2
// (github.com/cjhutto/vaderSentiment, MIT): the same lexicon (data/, MIT,
// see data/LICENSE-vader.txt), the same rules (negation, boosters and
// dampeners, ALL-CAPS emphasis, "but", "least", "kind of", idioms,
// punctuation emphasis, emoji descriptions) and the same rounding, so its
// scores match the reference implementation's.

//go:embed data/vader_lexicon.txt
var vaderLexiconTxt string

//go:embed data/emoji_utf8_lexicon.txt
var emojiLexiconTxt string

const (
	vBIncr   = 0.293
	vBDecr   = -0.293
	vCIncr   = 0.733
	vNScalar = -0.74
)

var vNegate = setOf("aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt",
	"ain't", "aren't", "can't", "couldn't", "daren't", "didn't", "doesn't",
	"dont", "hadnt", "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither",
	"don't", "hadn't", "hasn't", "haven't", "isn't", "mightn't", "mustn't",
	"neednt", "needn't", "never", "none", "nope", "nor", "not", "nothing", "nowhere",
	"oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent",
	"oughtn't", "shan't", "shouldn't", "uh-uh", "wasn't", "weren't",
	"without", "wont", "wouldnt", "won't", "wouldn't", "rarely", "seldom", "despite")

var vBooster = map[string]float64{
	"absolutely": vBIncr, "amazingly": vBIncr, "awfully": vBIncr,
	"completely": vBIncr, "considerable": vBIncr, "considerably": vBIncr,
	"decidedly": vBIncr, "deeply": vBIncr, "effing": vBIncr, "enormous": vBIncr, "enormously": vBIncr,
	"entirely": vBIncr, "especially": vBIncr, "exceptional": vBIncr, "exceptionally": vBIncr,
	"extreme": vBIncr, "extremely": vBIncr,
	"fabulously": vBIncr, "flipping": vBIncr, "flippin": vBIncr, "frackin": vBIncr, "fracking": vBIncr,
	"fricking": vBIncr, "frickin": vBIncr, "frigging": vBIncr, "friggin": vBIncr, "fully": vBIncr,
	"fuckin": vBIncr, "fucking": vBIncr, "fuggin": vBIncr, "fugging": vBIncr,
	"greatly": vBIncr, "hella": vBIncr, "highly": vBIncr, "hugely": vBIncr,
	"incredible": vBIncr, "incredibly": vBIncr, "intensely": vBIncr,
	"major": vBIncr, "majorly": vBIncr, "more": vBIncr, "most": vBIncr, "particularly": vBIncr,
	"purely": vBIncr, "quite": vBIncr, "really": vBIncr, "remarkably": vBIncr,
	"so": vBIncr, "substantially": vBIncr,
	"thoroughly": vBIncr, "total": vBIncr, "totally": vBIncr, "tremendous": vBIncr, "tremendously": vBIncr,
	"uber": vBIncr, "unbelievably": vBIncr, "unusually": vBIncr, "utter": vBIncr, "utterly": vBIncr,
	"very":   vBIncr,
	"almost": vBDecr, "barely": vBDecr, "hardly": vBDecr, "just enough": vBDecr,
	"kind of": vBDecr, "kinda": vBDecr, "kindof": vBDecr, "kind-of": vBDecr,
	"less": vBDecr, "little": vBDecr, "marginal": vBDecr, "marginally": vBDecr,
	"occasional": vBDecr, "occasionally": vBDecr, "partly": vBDecr,
	"scarce": vBDecr, "scarcely": vBDecr, "slight": vBDecr, "slightly": vBDecr, "somewhat": vBDecr,
	"sort of": vBDecr, "sorta": vBDecr, "sortof": vBDecr, "sort-of": vBDecr,
}

var vSpecial = map[string]float64{
	"the shit": 3, "the bomb": 3, "bad ass": 1.5, "badass": 1.5, "bus stop": 0.0,
	"yeah right": -2, "kiss of death": -1.5, "to die for": 3,
	"beating heart": 3.1, "broken heart": -2.9,
}

// vPhraseWords are the words of the multi-word special cases and
// boosters: a sequence with a word not among them cannot be one.
var vPhraseWords = func() map[string]bool {
	m := map[string]bool{}
	for _, d := range []map[string]float64{vSpecial, vBooster} {
		for k := range d {
			if strings.IndexByte(k, ' ') >= 0 {
				for w := range strings.SplitSeq(k, " ") {
					m[w] = true
				}
			}
		}
	}
	return m
}()

func setOf(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

type vaderData struct {
	lexicon map[string]float64
	emoji   map[rune]string // single code points only, as Python iterates them
}

var (
	vaderOnce sync.Once
	vaderD    *vaderData
)

func vaderLoad() *vaderData {
	vaderOnce.Do(func() {
		d := &vaderData{lexicon: make(map[string]float64, 7600), emoji: make(map[rune]string, 3600)}
		for line := range strings.SplitSeq(vaderLexiconTxt, "\n") {
			word, score, ok := strings.Cut(strings.TrimSpace(line), "\t")
			if !ok {
				continue
			}
			if f, err := strconv.ParseFloat(score, 64); err == nil {
				d.lexicon[word] = f // a repeated word: the last line wins, as in Python
			}
		}
		for line := range strings.SplitSeq(emojiLexiconTxt, "\n") {
			e, desc, ok := strings.Cut(strings.TrimSpace(line), "\t")
			if !ok {
				continue
			}
			if r, n := utf8.DecodeRuneInString(e); n == len(e) && r != utf8.RuneError {
				d.emoji[r] = desc
			}
		}
		vaderD = d
	})
	return vaderD
}

// Sentiment is a text's VADER scores: Compound in [-1, 1] (rounded to 4
// places), and the proportions Pos, Neg, Neu of the text that are
// positive, negative and neutral (rounded to 3 places).
type Sentiment struct {
	Compound, Pos, Neg, Neu float64
}

// Vader scores texts. The lexicon is loaded once per process and shared;
// a Vader holds scratch buffers, so use one per goroutine.
type Vader struct {
	d     *vaderData
	buf   []byte
	low   []byte   // the text lower-cased (ASCII texts)
	words []string // the words and emoticons, punctuation stripped
	lower []string // the same, lower-cased
	inPh  []bool   // lower[i] is in vPhraseWords
	sents []float64
	seq   []byte
}

// NewVader returns a scorer (loading the lexicon on first use).
func NewVader() *Vader { return &Vader{d: vaderLoad()} }

// Scores returns the sentiment of text.
func (v *Vader) Scores(text string) Sentiment {
	text = strings.TrimSpace(v.replaceEmoji(text))
	v.splitWords(text)
	words, lower := v.words, v.lower
	v.inPh = v.inPh[:0]
	for _, w := range lower {
		v.inPh = append(v.inPh, vPhraseWords[w])
	}
	capDiff := allCapDifferential(words)
	sents := v.sents[:0]
	for i, item := range words {
		lw := lower[i]
		if _, ok := vBooster[lw]; ok {
			sents = append(sents, 0)
			continue
		}
		if i < len(words)-1 && lw == "kind" && lower[i+1] == "of" {
			sents = append(sents, 0)
			continue
		}
		sents = append(sents, v.valence(item, i, capDiff))
	}
	v.sents = sents
	butCheck(lower, sents)
	return scoreValence(sents, text)
}

// replaceEmoji replaces each emoji by its description, as VADER does.
func (v *Vader) replaceEmoji(text string) string {
	found := false
	for _, r := range text {
		if r >= 0x80 {
			if _, ok := v.d.emoji[r]; ok {
				found = true
				break
			}
		}
	}
	if !found {
		return text
	}
	b := v.buf[:0]
	prevSpace := true
	for _, r := range text {
		if desc, ok := v.d.emoji[r]; ok {
			if !prevSpace {
				b = append(b, ' ')
			}
			b = append(b, desc...)
			prevSpace = false
			continue
		}
		b = utf8.AppendRune(b, r)
		prevSpace = r == ' '
	}
	v.buf = b
	return string(b)
}

// isPySpace is Python's str.isspace for one character.
func isPySpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

const pyPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

// isPunct is pyPunctuation as a table (strings.Trim would build its set
// on every call).
var isPunct = func() (t [256]bool) {
	for i := 0; i < len(pyPunctuation); i++ {
		t[pyPunctuation[i]] = true
	}
	return t
}()

// trimPunct is strings.Trim(w, pyPunctuation), returning the offset too.
func trimPunct(w string) (string, int) {
	s, e := 0, len(w)
	for s < e && isPunct[w[s]] {
		s++
	}
	for e > s && isPunct[w[e-1]] {
		e--
	}
	return w[s:e], s
}

// splitWords splits text on whitespace and strips the punctuation around
// each word unless that leaves 2 characters or fewer (an emoticon).
func (v *Vader) splitWords(text string) {
	words, lower := v.words[:0], v.lower[:0]
	ascii := true
	for i := 0; i < len(text); i++ {
		if text[i] >= 0x80 {
			ascii = false
			break
		}
	}
	var lowText string
	if ascii { // lower-case the whole text once, into scratch: same offsets
		b := v.low[:0]
		upper := false
		for i := 0; i < len(text); i++ {
			c := text[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
				upper = true
			}
			b = append(b, c)
		}
		v.low = b
		lowText = text
		if upper {
			// a view of the scratch: only read during this Scores call
			lowText = unsafe.String(unsafe.SliceData(b), len(b))
		}
	}
	start := -1
	for i, r := range text {
		if isPySpace(r) {
			if start >= 0 {
				words, lower = appendWord(words, lower, text, lowText, ascii, start, i)
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		words, lower = appendWord(words, lower, text, lowText, ascii, start, len(text))
	}
	v.words, v.lower = words, lower
}

func appendWord(words, lower []string, text, lowText string, ascii bool, s, e int) ([]string, []string) {
	st, off := trimPunct(text[s:e])
	if utf8.RuneCountInString(st) > 2 {
		s, e = s+off, s+off+len(st)
	}
	words = append(words, text[s:e])
	if ascii {
		lower = append(lower, lowText[s:e])
	} else {
		lower = append(lower, strings.ToLower(text[s:e]))
	}
	return words, lower
}

// isUpper is Python's str.isupper: some cased character, none lower-case.
func isUpper(s string) bool {
	cased := false
	for _, r := range s {
		switch {
		case unicode.IsLower(r) || unicode.IsTitle(r):
			return false
		case unicode.IsUpper(r):
			cased = true
		}
	}
	return cased
}

func allCapDifferential(words []string) bool {
	allcap := 0
	for _, w := range words {
		if isUpper(w) {
			allcap++
		}
	}
	d := len(words) - allcap
	return d > 0 && d < len(words)
}

func (v *Vader) inLexicon(w string) bool {
	_, ok := v.d.lexicon[w]
	return ok
}

// valence is vaderSentiment's sentiment_valence for word i.
func (v *Vader) valence(item string, i int, capDiff bool) float64 {
	lower := v.lower
	lw := lower[i]
	lex, ok := v.d.lexicon[lw]
	if !ok {
		return 0
	}
	val := lex
	if lw == "no" && i != len(lower)-1 && v.inLexicon(lower[i+1]) {
		val = 0 // "no" negates the next word instead
	}
	if (i > 0 && lower[i-1] == "no") || (i > 1 && lower[i-2] == "no") ||
		(i > 2 && lower[i-3] == "no" && (lower[i-1] == "or" || lower[i-1] == "nor")) {
		val = lex * vNScalar
	}
	if isUpper(item) && capDiff {
		if val > 0 {
			val += vCIncr
		} else {
			val -= vCIncr
		}
	}
	for startI := 0; startI < 3; startI++ {
		j := i - (startI + 1)
		if i > startI && !v.inLexicon(lower[j]) {
			s := scalarIncDec(v.words[j], lower[j], val, capDiff)
			if startI == 1 && s != 0 {
				s *= 0.95
			}
			if startI == 2 && s != 0 {
				s *= 0.9
			}
			val += s
			val = negationCheck(val, lower, startI, i)
			if startI == 2 {
				val = v.specialIdioms(val, i)
			}
		}
	}
	return leastCheck(v, val, i)
}

func scalarIncDec(word, lw string, valence float64, capDiff bool) float64 {
	scalar, ok := vBooster[lw]
	if !ok {
		return 0
	}
	if valence < 0 {
		scalar = -scalar
	}
	if isUpper(word) && capDiff {
		if valence > 0 {
			scalar += vCIncr
		} else {
			scalar -= vCIncr
		}
	}
	return scalar
}

func negated(w string) bool { return vNegate[w] || strings.Contains(w, "n't") }

func negationCheck(val float64, lower []string, startI, i int) float64 {
	switch startI {
	case 0:
		if negated(lower[i-1]) {
			val *= vNScalar
		}
	case 1:
		switch {
		case lower[i-2] == "never" && (lower[i-1] == "so" || lower[i-1] == "this"):
			val *= 1.25
		case lower[i-2] == "without" && lower[i-1] == "doubt":
		case negated(lower[i-2]):
			val *= vNScalar
		}
	case 2:
		switch {
		// (sic) Python's precedence: `a and (b or c) or (d or e)`
		case lower[i-3] == "never" && (lower[i-2] == "so" || lower[i-2] == "this") ||
			(lower[i-1] == "so" || lower[i-1] == "this"):
			val *= 1.25
		case lower[i-3] == "without" && (lower[i-2] == "doubt" || lower[i-1] == "doubt"):
		case negated(lower[i-3]):
			val *= vNScalar
		}
	}
	return val
}

// seqIn looks words up as one space-joined phrase in m, without allocating.
func (v *Vader) seqIn(m map[string]float64, words ...string) (float64, bool) {
	b := v.seq[:0]
	for k, w := range words {
		if k > 0 {
			b = append(b, ' ')
		}
		b = append(b, w...)
	}
	v.seq = b
	f, ok := m[string(b)]
	return f, ok
}

func (v *Vader) specialIdioms(val float64, i int) float64 {
	l, ph := v.lower, v.inPh
	// each sequence: its first word's index and length; looked up only
	// when all its words are phrase words
	can := func(from, n int) bool {
		for k := from; k < from+n; k++ {
			if !ph[k] {
				return false
			}
		}
		return true
	}
	for _, sq := range [...][2]int{{i - 1, 2}, {i - 2, 3}, {i - 2, 2}, {i - 3, 3}, {i - 3, 2}} {
		if !can(sq[0], sq[1]) {
			continue
		}
		if f, ok := v.seqIn(vSpecial, l[sq[0]:sq[0]+sq[1]]...); ok {
			val = f
			break
		}
	}
	if len(l)-1 > i && can(i, 2) {
		if f, ok := v.seqIn(vSpecial, l[i], l[i+1]); ok {
			val = f
		}
	}
	if len(l)-1 > i+1 && can(i, 3) {
		if f, ok := v.seqIn(vSpecial, l[i], l[i+1], l[i+2]); ok {
			val = f
		}
	}
	for _, sq := range [...][2]int{{i - 3, 3}, {i - 3, 2}, {i - 2, 2}} {
		if !can(sq[0], sq[1]) {
			continue
		}
		if f, ok := v.seqIn(vBooster, l[sq[0]:sq[0]+sq[1]]...); ok {
			val += f
		}
	}
	return val
}

func leastCheck(v *Vader, val float64, i int) float64 {
	l := v.lower
	if i > 1 && !v.inLexicon(l[i-1]) && l[i-1] == "least" {
		if l[i-2] != "at" && l[i-2] != "very" {
			val *= vNScalar
		}
	} else if i > 0 && !v.inLexicon(l[i-1]) && l[i-1] == "least" {
		val *= vNScalar
	}
	return val
}

// butCheck halves what comes before the first "but" and multiplies by 1.5
// what comes after. (vaderSentiment finds each score's position with
// list.index, which picks the first equal score; this uses the position
// itself, as intended, and in linear time. The two differ only when a
// scaled score happens to equal a later one.)
func butCheck(lower []string, sents []float64) {
	bi := -1
	for i, w := range lower {
		if w == "but" {
			bi = i
			break
		}
	}
	if bi < 0 {
		return
	}
	for i := range sents {
		if i < bi {
			sents[i] *= 0.5
		} else if i > bi {
			sents[i] *= 1.5
		}
	}
}

func punctuationEmphasis(text string) float64 {
	ep := min(strings.Count(text, "!"), 4)
	amp := float64(ep) * 0.292
	if qm := strings.Count(text, "?"); qm > 1 {
		if qm <= 3 {
			amp += float64(qm) * 0.18
		} else {
			amp += 0.96
		}
	}
	return amp
}

func scoreValence(sents []float64, text string) Sentiment {
	if len(sents) == 0 {
		return Sentiment{}
	}
	sum := 0.0
	for _, s := range sents {
		sum += s
	}
	punct := punctuationEmphasis(text)
	if sum > 0 {
		sum += punct
	} else if sum < 0 {
		sum -= punct
	}
	compound := sum / math.Sqrt(sum*sum+15)
	compound = max(-1, min(1, compound))
	pos, neg, neu := 0.0, 0.0, 0
	for _, s := range sents {
		if s > 0 {
			pos += s + 1
		}
		if s < 0 {
			neg += s - 1
		}
		if s == 0 {
			neu++
		}
	}
	if pos > math.Abs(neg) {
		pos += punct
	} else if pos < math.Abs(neg) {
		neg -= punct
	}
	total := pos + math.Abs(neg) + float64(neu)
	return Sentiment{
		Compound: roundPy(compound, 4),
		Pos:      roundPy(math.Abs(pos/total), 3),
		Neg:      roundPy(math.Abs(neg/total), 3),
		Neu:      roundPy(math.Abs(float64(neu)/total), 3),
	}
}

// roundPy is Python's round(x, places): correctly rounded from x's exact
// binary value, ties to even.
func roundPy(x float64, places int) float64 {
	var b [32]byte
	f, _ := strconv.ParseFloat(string(strconv.AppendFloat(b[:0], x, 'f', places, 64)), 64)
	if f == 0 {
		return 0 // no -0
	}
	return f
}
