package ai_test

import (
	"fmt"

	"streamd/ai"
)

func ExampleGetTokenizer() {
	tk, err := ai.GetTokenizer(ai.CL100K)
	if err != nil {
		panic(err)
	}
	ids := tk.Encode("tiktoken is great!")
	fmt.Println(ids, tk.Count("hello world"), tk.Decode(ids[:3]))
	head, _, cut, _ := tk.Truncate("tiktoken is great!", 4)
	fmt.Printf("%q %v\n", head, cut)
	// Output:
	// [83 1609 5963 374 2294 0] 2 tiktoken
	// "tiktoken is" true
}

func ExampleChunker() {
	text := "Héllo wörld, streaming!"
	c := &ai.Chunker{Size: 10, Overlap: 3}
	chunks, _ := c.Split(nil, text)
	for _, ch := range chunks {
		fmt.Printf("%d-%d %q\n", ch.Start, ch.End, text[ch.Start:ch.End])
	}
	// Output:
	// 0-12 "Héllo wörl"
	// 8-19 "örld, stre"
	// 16-25 "treaming!"
}

func ExampleVader() {
	v := ai.NewVader()
	fmt.Printf("%+v\n", v.Scores("VADER is smart, handsome, and funny."))
	// Output: {Compound:0.8316 Pos:0.746 Neg:0 Neu:0.254}
}

func ExampleNaiveBayes() {
	var m ai.NaiveBayes
	m.Train("billing", "refund my invoice")
	m.Train("bug", "the app crashes on login")
	label, confidence, _ := m.Predict("my invoice")
	fmt.Printf("%s %.3f\n", label, confidence)
	// Output: billing 0.848
}
