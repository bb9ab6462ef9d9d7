package ai

import (
	"errors"
	"math"
	"strings"
)

// NaiveBayes is an online multinomial naive Bayes text classifier: Train
// adds one labelled text's word counts, Predict returns the most probable
// label of a text,
//
//	argmax_c  log P(c) + Σ_w n(w) · log((count(c,w) + α) / (tokens(c) + α·|V|))
//
// (Laplace smoothing α, computed in log space; words never seen in
// training are ignored) with its posterior probability as the
// confidence. The vocabulary is capped at MaxVocab words: later new words
// are not learnt. Not safe for concurrent use.
type NaiveBayes struct {
	// Alpha is the smoothing constant (default 1).
	Alpha float64
	// MaxVocab caps the distinct words learnt (default 100000).
	MaxVocab int

	vocab  map[string]int32
	words  []string // id → word
	labels []string
	index  map[string]int
	docs   []uint64   // per label: texts trained
	tokens []uint64   // per label: words trained
	counts [][]uint32 // per label, per word id
	total  uint64     // texts trained

	w       Words
	ids     []int32 // the current text's known words (repeats kept)
	touched []int32
	seen    map[int32]bool
	scores  []float64
}

// ErrBadLabel is returned for an empty label or one holding a NUL byte.
var ErrBadLabel = errors.New("ai: a label must be non-empty and hold no NUL byte")

func (m *NaiveBayes) init() {
	if m.vocab == nil {
		m.vocab = make(map[string]int32)
		m.index = make(map[string]int)
		m.seen = make(map[int32]bool)
	}
	if m.Alpha <= 0 {
		m.Alpha = 1
	}
	if m.MaxVocab <= 0 {
		m.MaxVocab = 100000
	}
}

func (m *NaiveBayes) labelIndex(label string) (int, error) {
	m.init()
	if l, ok := m.index[label]; ok {
		return l, nil
	}
	if label == "" || strings.IndexByte(label, 0) >= 0 {
		return 0, ErrBadLabel
	}
	l := len(m.labels)
	m.index[label] = l
	m.labels = append(m.labels, label)
	m.docs = append(m.docs, 0)
	m.tokens = append(m.tokens, 0)
	m.counts = append(m.counts, nil)
	return l, nil
}

func (m *NaiveBayes) wordID(word []byte, add bool) (int32, bool) {
	if id, ok := m.vocab[string(word)]; ok {
		return id, true
	}
	if !add || len(m.words) >= m.MaxVocab {
		return 0, false
	}
	s := string(word)
	id := int32(len(m.words))
	m.vocab[s] = id
	m.words = append(m.words, s)
	return id, true
}

func (m *NaiveBayes) add(l int, id int32, n uint32) {
	c := m.counts[l]
	if int(id) >= len(c) {
		c = append(c, make([]uint32, int(id)+1-len(c))...)
		m.counts[l] = c
	}
	c[id] += n
}

// Train learns one text of label. It returns the ids of the distinct
// words whose count changed (valid until the next call): with Word and
// Count, what a caller persists.
func (m *NaiveBayes) Train(label, text string) ([]int32, error) {
	l, err := m.labelIndex(label)
	if err != nil {
		return nil, err
	}
	touched := m.touched[:0]
	clear(m.seen)
	m.w.Each(text, func(word []byte) {
		id, ok := m.wordID(word, true)
		if !ok {
			return
		}
		m.add(l, id, 1)
		m.tokens[l]++
		if !m.seen[id] {
			m.seen[id] = true
			touched = append(touched, id)
		}
	})
	m.touched = touched
	m.docs[l]++
	m.total++
	return touched, nil
}

// Predict returns text's most probable label and its posterior
// probability; ok is false when nothing has been trained yet.
func (m *NaiveBayes) Predict(text string) (label string, confidence float64, ok bool) {
	if m.total == 0 {
		return "", 0, false
	}
	ids := m.ids[:0]
	m.w.Each(text, func(word []byte) {
		if id, ok := m.wordID(word, false); ok {
			ids = append(ids, id)
		}
	})
	m.ids = ids
	v := float64(len(m.words))
	scores := m.scores[:0]
	best := 0
	for l := range m.labels {
		s := math.Log(float64(m.docs[l]) / float64(m.total))
		s -= float64(len(ids)) * math.Log(float64(m.tokens[l])+m.Alpha*v)
		c := m.counts[l]
		for _, id := range ids {
			n := 0.0
			if int(id) < len(c) {
				n = float64(c[id])
			}
			s += math.Log(n + m.Alpha)
		}
		scores = append(scores, s)
		if s > scores[best] {
			best = l
		}
	}
	m.scores = scores
	sum := 0.0
	for _, s := range scores {
		sum += math.Exp(s - scores[best])
	}
	return m.labels[best], 1 / sum, true
}

// Labels returns the labels seen, in the order first seen.
func (m *NaiveBayes) Labels() []string { return m.labels }

// Word returns the word of an id from Train.
func (m *NaiveBayes) Word(id int32) string { return m.words[id] }

// Count returns how many times word id was trained under label.
func (m *NaiveBayes) Count(label string, id int32) uint32 {
	l, ok := m.index[label]
	if !ok || int(id) >= len(m.counts[l]) {
		return 0
	}
	return m.counts[l][id]
}

// LabelStats returns the texts and words trained under label.
func (m *NaiveBayes) LabelStats(label string) (docs, tokens uint64) {
	l, ok := m.index[label]
	if !ok {
		return 0, 0
	}
	return m.docs[l], m.tokens[l]
}

// Docs returns the texts trained in all.
func (m *NaiveBayes) Docs() uint64 { return m.total }

// RestoreLabel sets label's text and word totals (restoring a model).
func (m *NaiveBayes) RestoreLabel(label string, docs, tokens uint64) error {
	l, err := m.labelIndex(label)
	if err != nil {
		return err
	}
	m.total += docs - m.docs[l]
	m.docs[l], m.tokens[l] = docs, tokens
	return nil
}

// RestoreWord sets word's count under label (restoring a model).
func (m *NaiveBayes) RestoreWord(label, word string, count uint32) error {
	l, err := m.labelIndex(label)
	if err != nil {
		return err
	}
	id, ok := m.wordID([]byte(word), true)
	if !ok {
		return nil // over MaxVocab
	}
	m.add(l, id, 0)
	m.counts[l][id] = count
	return nil
}
