package aimodel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// Client speaks the OpenAI-compatible HTTP API (OpenAI, Ollama, vLLM,
// LocalAI, …): POST {BaseURL}/embeddings and streamed POST
// {BaseURL}/chat/completions. Its fields are set once, before use; then
// it is safe for concurrent use.
type Client struct {
	// BaseURL is the API root, e.g. "https://api.openai.com/v1" or
	// "http://127.0.0.1:11434/v1". A URL that already ends with the
	// endpoint ("/embeddings", "/chat/completions") is used as it is.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer KEY" when set. It never
	// appears in errors or logs.
	APIKey string
	// Headers are added to every request.
	Headers map[string]string
	// HTTP sends the requests. Default http.DefaultClient.
	HTTP *http.Client
	// Timeout bounds each attempt: an embeddings request, or a chat
	// stream from the request to its end. Default 30s.
	Timeout time.Duration
	// Policy retries failed attempts and guards them (breaker, rate).
	Policy Policy
}

// Usage is the token usage the API reports.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Endpoint joins base and the endpoint path ("embeddings",
// "chat/completions"), unless base ends with it already.
func Endpoint(base, path string) string {
	base = strings.TrimRight(base, "/")
	if strings.HasSuffix(base, "/"+path) {
		return base
	}
	return base + "/" + path
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 30 * time.Second
}

func (c *Client) newRequest(ctx context.Context, url string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Reason: ReasonBadInput, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range c.Headers {
		req.Header.Set(k, v)
	}
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	return req, nil
}

// maxBody bounds what is read of an answer.
const maxBody = 64 << 20

// readAnswer reads a non-streamed answer: its body on 2xx, an *Error
// otherwise.
func readAnswer(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, statusError(resp, body)
	}
	if err != nil {
		return nil, AsError(err)
	}
	if len(body) > maxBody {
		return nil, &Error{Reason: ReasonBadResponse, Err: errors.New("answer over 64 MiB")}
	}
	return body, nil
}

// EmbeddingsRequest is the body of POST /embeddings.
type EmbeddingsRequest struct {
	Model string   `json:"model"`
	Input []string `json:"input"`
	// Dimensions asks models that support it (OpenAI text-embedding-3-*)
	// for shorter vectors; 0 leaves it out.
	Dimensions int `json:"dimensions,omitempty"`
}

type embeddingsAnswer struct {
	Data []struct {
		Index     *int      `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
	Usage Usage `json:"usage"`
}

// Embeddings returns one vector per input, in the order of the inputs
// (the answer's "index" says which is which), and the usage.
func (c *Client) Embeddings(ctx context.Context, r EmbeddingsRequest) ([][]float32, Usage, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, Usage{}, &Error{Reason: ReasonBadInput, Err: err}
	}
	url := Endpoint(c.BaseURL, "embeddings")
	var vecs [][]float32
	var usage Usage
	err = c.Policy.Do(ctx, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, c.timeout())
		defer cancel()
		req, err := c.newRequest(actx, url, body)
		if err != nil {
			return err
		}
		resp, err := c.httpClient().Do(req)
		if err != nil {
			return AsError(err)
		}
		b, err := readAnswer(resp)
		if err != nil {
			return err
		}
		vecs, usage, err = parseEmbeddings(b, len(r.Input))
		return err
	})
	if err != nil {
		return nil, Usage{}, err
	}
	return vecs, usage, nil
}

func parseEmbeddings(b []byte, n int) ([][]float32, Usage, error) {
	var a embeddingsAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, Usage{}, &Error{Reason: ReasonBadResponse, Err: fmt.Errorf("embeddings answer: %v", err)}
	}
	if len(a.Data) != n {
		return nil, Usage{}, &Error{Reason: ReasonBadResponse, Err: fmt.Errorf("embeddings answer has %d vectors for %d inputs", len(a.Data), n)}
	}
	out := make([][]float32, n)
	dims := -1
	for i, d := range a.Data {
		idx := i
		if d.Index != nil {
			idx = *d.Index
		}
		if idx < 0 || idx >= n || out[idx] != nil {
			return nil, Usage{}, &Error{Reason: ReasonBadResponse, Err: fmt.Errorf("embeddings answer: bad or repeated index %d", idx)}
		}
		if len(d.Embedding) == 0 || dims >= 0 && len(d.Embedding) != dims {
			return nil, Usage{}, &Error{Reason: ReasonBadResponse, Err: fmt.Errorf("embeddings answer: vector %d has %d dimensions", idx, len(d.Embedding))}
		}
		dims = len(d.Embedding)
		out[idx] = d.Embedding
	}
	return out, a.Usage, nil
}

// ChatMessage is one message of a chat completion request.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatRequest is the body of a streamed POST /chat/completions. Stream
// and stream_options.include_usage are always sent.
type ChatRequest struct {
	Model       string        `json:"model"`
	Messages    []ChatMessage `json:"messages"`
	MaxTokens   int           `json:"max_tokens,omitempty"`
	Temperature *float64      `json:"temperature,omitempty"`
}

// Body encodes r with "stream": true and "stream_options":
// {"include_usage": true}.
func (r *ChatRequest) Body() []byte {
	type streamOpts struct {
		IncludeUsage bool `json:"include_usage"`
	}
	b, _ := json.Marshal(struct {
		*ChatRequest
		Stream        bool       `json:"stream"`
		StreamOptions streamOpts `json:"stream_options"`
	}{r, true, streamOpts{true}})
	return b
}

// StreamResult is how a chat stream ended.
type StreamResult struct {
	// Text is the whole answer (every delta, joined).
	Text string
	// FinishReason is the last finish_reason the stream gave ("stop",
	// "length", …), "" when none.
	FinishReason string
	// Usage is the final chunk's usage, nil when the server sent none.
	Usage *Usage
}

type chatChunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		Message *struct {
			Content string `json:"content"`
		} `json:"message"` // a non-streamed answer
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *Usage `json:"usage"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// ErrStopped is what onDelta returns to end a stream early; ChatStream
// then returns a ReasonCancelled error.
var ErrStopped = errors.New("stopped")

// ChatStream sends body (a ChatRequest's Body, or any JSON with
// "stream": true) and calls onDelta with each piece of content as it
// arrives, in order. Attempts that fail before the stream starts (a
// refused connection, 429, 5xx) are retried by the Policy; once content
// has flowed, a failure ends the stream: a malformed event
// (ReasonMalformedSSE), an error object in the stream (ReasonUpstream),
// or the stream breaking off before "data: [DONE]" or a finish_reason
// (ReasonStreamEnded). When ctx is cancelled with a cause that is an
// *Error, that is the error returned. A server that answers
// application/json instead of a stream is read as one delta.
func (c *Client) ChatStream(ctx context.Context, body []byte, onDelta func(delta string) error) (StreamResult, error) {
	url := Endpoint(c.BaseURL, "chat/completions")
	var resp *http.Response
	var stop context.CancelFunc
	var sctx context.Context // the successful attempt's context: bounds the stream
	attempts := 0
	err := c.Policy.Do(ctx, func(ctx context.Context) error {
		attempts++
		actx, cancel := context.WithTimeout(ctx, c.timeout())
		req, err := c.newRequest(actx, url, body)
		if err != nil {
			cancel()
			return err
		}
		req.Header.Set("Accept", "text/event-stream")
		r, err := c.httpClient().Do(req)
		if err != nil {
			cancel()
			return causeOr(actx, AsError(err))
		}
		if r.StatusCode < 200 || r.StatusCode > 299 {
			b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
			r.Body.Close()
			cancel()
			return statusError(r, b)
		}
		resp, stop, sctx = r, cancel, actx
		return nil
	})
	if err != nil {
		return StreamResult{}, causeOr(ctx, AsError(err))
	}
	defer stop()
	defer resp.Body.Close()
	res, err := readChatStream(sctx, resp, onDelta)
	if err != nil {
		e := AsError(err)
		if e.Attempts == 0 {
			e = withAttempts(e, attempts)
		}
		return res, e
	}
	return res, nil
}

// readChatStream reads a chat completion answer: a stream of events or,
// from servers that do not stream, one JSON object.
func readChatStream(sctx context.Context, resp *http.Response, onDelta func(string) error) (StreamResult, error) {
	var res StreamResult
	var text strings.Builder
	handle := func(ch *chatChunk) error {
		if ch.Error != nil {
			return &Error{Reason: ReasonUpstream, Err: errors.New(ch.Error.Message)}
		}
		if ch.Usage != nil {
			u := *ch.Usage
			res.Usage = &u
		}
		for _, c := range ch.Choices {
			content := c.Delta.Content
			if c.Message != nil {
				content = c.Message.Content
			}
			if content != "" {
				text.WriteString(content)
				if err := onDelta(content); err != nil {
					return err
				}
			}
			if c.FinishReason != nil && *c.FinishReason != "" {
				res.FinishReason = *c.FinishReason
			}
		}
		return nil
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return res, causeOr(sctx, &Error{Reason: ReasonStreamEnded, Err: err})
		}
		var ch chatChunk
		if err := json.Unmarshal(b, &ch); err != nil {
			return res, &Error{Reason: ReasonBadResponse, Err: err}
		}
		if err := handle(&ch); err != nil {
			return res, causeOr(sctx, stopErr(err))
		}
		res.Text = text.String()
		return res, nil
	}
	done := false
	var p SSEParser
	errDone := errors.New("done")
	err := ReadSSE(resp.Body, &p, func(ev SSEEvent) error {
		if ev.Event != "" && ev.Event != "message" {
			if ev.Event == "error" {
				return &Error{Reason: ReasonUpstream, Err: fmt.Errorf("%.200s", ev.Data)}
			}
			return nil // an event type we do not know: skipped
		}
		if string(bytes.TrimSpace(ev.Data)) == "[DONE]" {
			done = true
			return errDone
		}
		var ch chatChunk
		if err := json.Unmarshal(ev.Data, &ch); err != nil {
			return &Error{Reason: ReasonMalformedSSE, Err: fmt.Errorf("event data is not a JSON chunk: %.100q", ev.Data)}
		}
		return handle(&ch)
	})
	res.Text = text.String()
	switch {
	case err == errDone:
		return res, nil
	case errors.Is(err, ErrSSETooLong):
		return res, &Error{Reason: ReasonMalformedSSE, Err: err}
	case err != nil:
		var e *Error
		if errors.As(err, &e) {
			return res, causeOr(sctx, e)
		}
		return res, causeOr(sctx, stopErr(err))
	case !done && res.FinishReason == "":
		return res, causeOr(sctx, &Error{Reason: ReasonStreamEnded, Err: errors.New("the stream ended before [DONE]")})
	}
	return res, nil
}

func stopErr(err error) *Error {
	if errors.Is(err, ErrStopped) {
		return &Error{Reason: ReasonCancelled, Err: err}
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Reason: ReasonStreamEnded, Err: err}
}

// causeOr returns ctx's cancellation cause when it is an *Error (a
// watchdog's timeout, nobody listening), else e.
func causeOr(ctx context.Context, e *Error) *Error {
	if ctx.Err() == nil {
		return e
	}
	var ce *Error
	if errors.As(context.Cause(ctx), &ce) {
		c := *ce
		if c.Attempts == 0 {
			c.Attempts = e.Attempts
		}
		return &c
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &Error{Reason: ReasonTimeout, Attempts: e.Attempts, Err: ctx.Err()}
	}
	return e
}
