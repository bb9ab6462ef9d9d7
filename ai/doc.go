// Package ai holds the logic of streamd's AI text operators, free of the
// pipeline machinery (package pipeline wraps each in an op, docs/ai.md):
//
//   - Tokenizer: OpenAI-compatible BPE token ids and counts (cl100k_base,
//     o200k_base), offline, one shared copy per encoding per process;
//   - Chunker: texts split by runes or tokens with overlap, with byte
//     offsets;
//   - Vader: lexicon and rule-based sentiment (VADER);
//   - NaiveBayes: an online multinomial naive Bayes classifier;
//   - Rules: a keyword, regex and condition classifier;
//   - LRU: a map bounded in size and age, for memoizing.
//
// Apart from the shared read-only tokenizers and lexicon, the types keep
// scratch buffers and are meant for one goroutine each.
package ai
