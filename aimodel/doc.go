// Package aimodel is what streamd's model and vector operators
// (docs/ai.md, "Model and vector operators") are built on, usable on its
// own from Go:
//
//   - HashingEmbedder: deterministic, offline embeddings by feature
//     hashing (word unigrams and bigrams, signed, L2-normalised);
//   - vector math (Dot, Cosine, Normalize) and the JSON form of vectors
//     (ParseVector, AppendVector);
//   - Client: an OpenAI-compatible HTTP client for POST /v1/embeddings
//     and streamed POST /v1/chat/completions (server-sent events, parsed
//     incrementally by SSEParser);
//   - QdrantClient: upserts points over Qdrant's HTTP API;
//   - Policy, Breaker, Limiter: retries with backoff (honouring
//     Retry-After), a circuit breaker and a request-rate limit, shared by
//     the clients;
//   - LRU: a bounded cache of embeddings keyed by content hash;
//   - WatchDocuments: a directory poller that turns the files of a
//     directory (text, Markdown, JSON lines) into JSON events.
//
// Every client reports failures as *Error values whose Reason is one of
// the Reason constants, which the pipeline ops put in their error records.
package aimodel
