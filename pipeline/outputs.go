package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"streamd/operators"
)

// checkInput checks that exactly one input is given.
func checkInput(spec *Spec) error {
	in := &spec.Input
	n := 0
	for _, set := range []bool{in.Stream != "", in.Generator != nil, in.File != "", in.Stdin, in.Documents != nil} {
		if set {
			n++
		}
	}
	where := fmt.Sprintf("pipeline %q: input", spec.Name)
	switch {
	case n == 0:
		return specError(spec.node, "input", where, "missing: give one of stream, generator, file, stdin, documents")
	case n > 1:
		return specError(spec.node, "input", where, "give only one of stream, generator, file, stdin, documents")
	}
	switch in.Overflow {
	case "", "block", "drop-newest":
	default:
		return specError(spec.node, "input", where, "overflow %q: want block or drop-newest", in.Overflow)
	}
	if in.Overflow != "" && in.Stream == "" {
		return specError(spec.node, "input", where, "overflow applies to a stream input")
	}
	if err := checkDocuments(in.Documents); err != nil {
		return specError(spec.node, "input", where, "documents: %v", err)
	}
	if g := in.Generator; g != nil {
		if g.Kind != "" && g.Kind != "market" && g.Kind != "counter" {
			return specError(spec.node, "input", where, "generator kind %q: want market or counter", g.Kind)
		}
		if g.Rate < 0 {
			return specError(spec.node, "input", where, "generator rate must be ≥ 0")
		}
	}
	return nil
}

// attachOutputs connects the pipeline's output to its output specs.
func (p *Pipeline) attachOutputs(where string, opts *Options) error {
	outs := p.Spec.Outputs
	if p.Spec.Output != nil {
		outs = append([]OutputSpec{*p.Spec.Output}, outs...)
	}
	hasSink := false
	for _, b := range p.nodes {
		if len(b.node.Outputs()) == 0 {
			hasSink = true
		}
	}
	if len(outs) == 0 && !hasSink {
		return specError(p.Spec.node, "", where, "has no output: add output: {room: NAME} (or reply: true, log: FILE, webhook: {url: URL}), or end with a sink node")
	}
	for i := range outs {
		fn, c, err := newOutput(&outs[i], p.Spec.Name, opts)
		if err != nil {
			return specError(p.Spec.node, "output", fmt.Sprintf("%s: output", where), "%v", err)
		}
		if c != nil {
			p.outs = append(p.outs, c)
		}
		p.Graph.Out.Connect(operators.InletFunc[Event](fn))
	}
	return nil
}

// newOutput returns the batch function of one output and what to close.
func newOutput(o *OutputSpec, pipeline string, opts *Options) (func([]Event), closer, error) {
	n := 0
	for _, set := range []bool{o.Room != "", o.Reply, o.Log != "", o.Webhook != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, nil, fmt.Errorf("give exactly one of room, reply, log, webhook")
	}
	host := opts.Host
	switch {
	case o.Room != "":
		if host == nil {
			return nil, nil, fmt.Errorf("room output needs a host (an engine)")
		}
		room := o.Room
		log := opts.Logger
		return func(b []Event) {
			for i := range b {
				if err := host.Publish(room, b[i].Data); err != nil {
					log.Warn("pipeline: room output failed", "pipeline", pipeline, "room", room, "err", err)
				}
			}
		}, nil, nil
	case o.Reply:
		if host == nil {
			return nil, nil, fmt.Errorf("reply output needs a host (an engine)")
		}
		return func(b []Event) {
			for i := range b {
				if b[i].Origin != nil {
					host.Reply(&b[i], b[i].Data)
				}
			}
		}, nil, nil
	case o.Log != "" && opts.checkOnly && o.Log != "-":
		// Check creates no file, but the directory must be there.
		if st, err := os.Stat(filepath.Dir(o.Log)); err != nil || !st.IsDir() {
			return nil, nil, fmt.Errorf("log output %q: its directory does not exist", o.Log)
		}
		return func([]Event) {}, nil, nil
	case o.Log != "":
		l, err := openLog(o.Log, pipeline)
		if err != nil {
			return nil, nil, err
		}
		return l.write, l, nil
	default:
		w, err := newWebhook(o.Webhook, pipeline, opts)
		if err != nil {
			return nil, nil, err
		}
		return w.send, w, nil
	}
}

// logOut appends events as JSON lines.
type logOut struct {
	pipeline string
	f        io.WriteCloser
	w        *bufio.Writer
	line     []byte
}

func openLog(path, pipeline string) (*logOut, error) {
	var f io.WriteCloser = nopWriteCloser{os.Stdout}
	if path != "-" {
		file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("log output: %w", err)
		}
		f = file
	}
	return &logOut{pipeline: pipeline, f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// write appends one line per event, {"time":…,"pipeline":…,"key":…,"data":…},
// and flushes once per batch.
func (l *logOut) write(b []Event) {
	for i := range b {
		ev := &b[i]
		s := l.line[:0]
		s = append(s, `{"time":`...)
		s = appendJSONString(s, time.Unix(0, ev.Time).UTC().Format(time.RFC3339Nano))
		s = append(s, `,"pipeline":`...)
		s = appendJSONString(s, l.pipeline)
		if ev.Key != "" {
			s = append(s, `,"key":`...)
			kb, _ := marshal(ev.Key)
			s = append(s, kb...)
		}
		s = append(s, `,"data":`...)
		if len(ev.Data) == 0 {
			s = append(s, "null"...)
		} else {
			s = append(s, ev.Data...)
		}
		s = append(s, '}', '\n')
		l.line = s
		_, _ = l.w.Write(s)
	}
	_ = l.w.Flush()
}

func (l *logOut) Close() error {
	err := l.w.Flush()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// webhook POSTs each event's data to a URL from its own goroutine, so a
// slow endpoint never stalls the flow: events wait in a bounded queue and
// are dropped (and counted) when it is full.
type webhook struct {
	spec     WebhookSpec
	retries  int
	pipeline string
	client   *http.Client
	log      *slog.Logger
	q        chan []byte
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	Sent, Failed, Dropped atomic.Uint64
}

func newWebhook(s *WebhookSpec, pipeline string, opts *Options) (*webhook, error) {
	if s.URL == "" {
		return nil, fmt.Errorf("webhook needs a url")
	}
	if u := s.URL; !(len(u) > 7 && (u[:7] == "http://" || len(u) > 8 && u[:8] == "https://")) {
		return nil, fmt.Errorf("webhook url %q: want http:// or https://", u)
	}
	w := &webhook{spec: *s, retries: 3, pipeline: pipeline, client: opts.HTTPClient, log: opts.Logger}
	if s.Retries != nil {
		w.retries = max(*s.Retries, 0)
	}
	if w.spec.Timeout <= 0 {
		w.spec.Timeout = 5 * time.Second
	}
	if w.spec.Queue <= 0 {
		w.spec.Queue = 1024
	}
	w.q = make(chan []byte, w.spec.Queue)
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.wg.Add(1)
	go w.run()
	return w, nil
}

func (w *webhook) send(b []Event) {
	for i := range b {
		select {
		case w.q <- b[i].Data: // Data is immutable: no copy needed
		default:
			w.Dropped.Add(1)
			w.log.Warn("pipeline: webhook queue full, event dropped", "pipeline", w.pipeline, "url", w.spec.URL)
		}
	}
}

func (w *webhook) run() {
	defer w.wg.Done()
	for {
		select {
		case <-w.ctx.Done():
			return
		case data := <-w.q:
			if err := w.post(data); err != nil {
				w.Failed.Add(1)
				w.log.Warn("pipeline: webhook failed", "pipeline", w.pipeline, "url", w.spec.URL, "err", err)
			} else {
				w.Sent.Add(1)
			}
		}
	}
}

// post tries once plus Retries more times, backing off from 100ms.
func (w *webhook) post(data []byte) error {
	backoff := 100 * time.Millisecond
	var err error
	for attempt := 0; attempt <= w.retries; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(backoff):
			case <-w.ctx.Done():
				return err
			}
			backoff = min(backoff*2, 5*time.Second)
		}
		var retry bool
		retry, err = w.attempt(data)
		if err == nil || !retry {
			return err
		}
	}
	return err
}

func (w *webhook) attempt(data []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(w.ctx, w.spec.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.spec.URL, bytes.NewReader(data))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Streamd-Pipeline", w.pipeline)
	for k, v := range w.spec.Headers {
		req.Header.Set(k, v)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("webhook: %s", resp.Status)
	case resp.StatusCode >= 300:
		return false, fmt.Errorf("webhook: %s", resp.Status)
	}
	return false, nil
}

// Close sends what is queued (within a second), then stops.
func (w *webhook) Close() error {
	deadline := time.Now().Add(time.Second)
	for len(w.q) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	w.cancel()
	w.wg.Wait()
	return nil
}
