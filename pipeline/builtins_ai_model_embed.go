package pipeline

import (
	"context"
	"time"

	"streamd/aimodel"
	"streamd/operators"
)

// embedPayload is what an embed worker needs of an event.
type embedPayload struct {
	text string
	key  [32]byte // cache key
}

func buildEmbed(c *BuildContext) (operators.Node, error) {
	s := c.Node.Embed
	if s == nil {
		s = &EmbedSpec{}
	}
	src := s.Text
	if src == "" {
		src = "data.text"
	}
	text, err := c.Expr("embed", src, false)
	if err != nil {
		return nil, err
	}
	field, err := fieldName(c, "embed", s.Field, "embedding")
	if err != nil {
		return nil, err
	}
	if len(field) != 1 {
		return nil, c.Errorf("embed", "field %q: want a top-level name", s.Field)
	}
	fieldKeys := field[:1]
	if s.Dimensions < 0 || s.BatchSize < 0 || s.MaxWait < 0 {
		return nil, c.Errorf("embed", "dimensions, batch_size and max_wait must not be negative")
	}
	switch s.Provider {
	case "", "hashing":
		if s.URL != "" || s.Model != "" {
			return nil, c.Errorf("embed", "provider hashing takes no url or model (set provider: openai to call a server)")
		}
		dims := s.Dimensions
		if dims == 0 {
			dims = 256
		}
		h := aimodel.HashingEmbedder{Dimensions: dims}
		n := newAsyncNode[embedPayload](c.Node.Name, "embed", 0, 1024, 1, 0, false)
		var vec []float32
		var vb []byte
		n.prep = func(ev *Event) (embedPayload, *asyncMsg) {
			t, err := text.String(ev)
			if err != nil {
				return embedPayload{}, &asyncMsg{err: badInput("text: %v", err)}
			}
			vec = h.EmbedInto(vec, t)
			vb = aimodel.AppendVector(vb[:0], vec)
			return embedPayload{}, &asyncMsg{data: setFields(ev.Data, fieldKeys, [][]byte{vb})}
		}
		return n, nil
	case "openai":
	default:
		return nil, c.Errorf("embed", "provider %q: want hashing or openai", s.Provider)
	}
	if s.Model == "" {
		return nil, c.Errorf("embed", "provider openai needs model")
	}
	sv, err := buildService(c, "embed", &s.ServiceSpec, "OPENAI_API_KEY", 4)
	if err != nil {
		return nil, err
	}
	batch := s.BatchSize
	if batch == 0 {
		batch = 32
	}
	wait := s.MaxWait
	if wait == 0 {
		wait = defaultEmbedWait
	}
	n := newAsyncNode[embedPayload](c.Node.Name, "embed", sv.conc, sv.maxIn, batch, wait, sv.overErr)
	n.closers = append(n.closers, sv.close)
	st := n.stats
	sv.policy.Retried = st.Counter("retries")
	client := &aimodel.Client{BaseURL: s.URL, APIKey: sv.apiKey, Headers: s.Headers, HTTP: sv.http, Timeout: s.Timeout, Policy: sv.policy}
	requests, tokens := st.Counter("requests"), st.Counter("prompt_tokens")
	hits, misses := st.Counter("cache_hits"), st.Counter("cache_misses")
	circuit := st.Counter("circuit_open")
	var cache *aimodel.LRU[[32]byte, []float32]
	if size := 10000; s.Cache == nil || *s.Cache > 0 {
		if s.Cache != nil {
			size = *s.Cache
		}
		cache = aimodel.NewLRU[[32]byte, []float32](size)
	}
	model := s.Model
	var vb []byte
	n.prep = func(ev *Event) (embedPayload, *asyncMsg) {
		t, err := text.String(ev)
		if err != nil {
			return embedPayload{}, &asyncMsg{err: badInput("text: %v", err)}
		}
		p := embedPayload{text: t}
		if cache != nil {
			p.key = aimodel.ContentKey(model, t)
			if v, ok := cache.Get(p.key); ok {
				hits.Add(1)
				vb = aimodel.AppendVector(vb[:0], v)
				return p, &asyncMsg{data: setFields(ev.Data, fieldKeys, [][]byte{vb})}
			}
			misses.Add(1)
		}
		return p, nil
	}
	n.finish = func(s *asyncSlot[embedPayload], m *asyncMsg) {
		if v, ok := m.extra.([]float32); ok && cache != nil {
			cache.Put(s.p.key, v)
		}
	}
	dims := s.Dimensions
	n.work = func(ctx context.Context, items []asyncItem[embedPayload], send func(asyncMsg) bool) {
		texts := make([]string, len(items))
		for i := range items {
			texts[i] = items[i].p.text
		}
		requests.Add(1)
		vecs, usage, err := client.Embeddings(ctx, aimodel.EmbeddingsRequest{Model: model, Input: texts, Dimensions: dims})
		if err != nil {
			e := aimodel.AsError(err)
			if e.Reason == aimodel.ReasonCircuitOpen {
				circuit.Add(uint64(len(items)))
			}
			for i := range items {
				if !send(asyncMsg{seq: items[i].seq, final: true, err: e}) {
					return
				}
			}
			return
		}
		tokens.Add(uint64(usage.PromptTokens))
		var b []byte
		for i := range items {
			b = aimodel.AppendVector(b[:0], vecs[i])
			data := setFields(items[i].ev.Data, fieldKeys, [][]byte{b})
			if !send(asyncMsg{seq: items[i].seq, final: true, data: data, extra: vecs[i]}) {
				return
			}
		}
	}
	return n, nil
}

// defaultEmbedWait is an embed batch's default time budget.
const defaultEmbedWait = 5 * time.Millisecond

// qdrantPayload is what a qdrant worker needs of an event.
type qdrantPayload struct {
	id      []byte // the point id as JSON; nil: from the data
	payload []byte // nil: the data without the vector
}

func buildQdrant(c *BuildContext) (operators.Node, error) {
	s := c.Node.Qdrant
	if s == nil {
		return nil, c.Errorf("", "op qdrant needs qdrant: {url: …, collection: …}")
	}
	if s.Collection == "" {
		return nil, c.Errorf("qdrant", "needs collection")
	}
	field, err := fieldName(c, "qdrant", s.Field, "embedding")
	if err != nil {
		return nil, err
	}
	if s.BatchSize < 0 || s.MaxWait < 0 {
		return nil, c.Errorf("qdrant", "batch_size and max_wait must not be negative")
	}
	var idX, payX *Expr
	if s.ID != "" {
		if idX, err = c.Expr("qdrant", s.ID, false); err != nil {
			return nil, err
		}
	}
	if s.Payload != "" {
		if payX, err = c.Expr("qdrant", s.Payload, false); err != nil {
			return nil, err
		}
	}
	sv, err := buildService(c, "qdrant", &s.ServiceSpec, "QDRANT_API_KEY", 2)
	if err != nil {
		return nil, err
	}
	batch := s.BatchSize
	if batch == 0 {
		batch = 64
	}
	wait := s.MaxWait
	if wait == 0 {
		wait = 100 * time.Millisecond
	}
	n := newAsyncNode[qdrantPayload](c.Node.Name, "qdrant", sv.conc, sv.maxIn, batch, wait, sv.overErr)
	n.closers = append(n.closers, sv.close)
	st := n.stats
	sv.policy.Retried = st.Counter("retries")
	client := &aimodel.QdrantClient{BaseURL: s.URL, APIKey: sv.apiKey, HTTP: sv.http, Timeout: s.Timeout,
		NoWait: s.Wait != nil && !*s.Wait, Policy: sv.policy}
	requests, points, circuit := st.Counter("requests"), st.Counter("points"), st.Counter("circuit_open")
	n.prep = func(ev *Event) (qdrantPayload, *asyncMsg) {
		var p qdrantPayload
		if idX != nil {
			v, err := idX.run(ev)
			if err != nil {
				return p, &asyncMsg{err: badInput("id: %v", err)}
			}
			p.id = aimodel.AppendPointID(nil, v)
		}
		if payX != nil {
			b, _, err := payX.JSON(ev)
			if err != nil || len(b) == 0 || b[0] != '{' {
				return p, &asyncMsg{err: badInput("payload: want an object (%v)", err)}
			}
			p.payload = b
		}
		return p, nil
	}
	collection, vname, top := s.Collection, s.VectorName, field[len(field)-1]
	n.work = func(ctx context.Context, items []asyncItem[qdrantPayload], send func(asyncMsg) bool) {
		pts := make([][]byte, 0, len(items))
		ok := make([]uint64, 0, len(items))
		for i := range items {
			it := &items[i]
			raw, found := jsonPath(it.ev.Data, field)
			if !found {
				if !send(asyncMsg{seq: it.seq, final: true, err: badInput("no vector at %s", s.Field)}) {
					return
				}
				continue
			}
			if err := aimodel.CheckVector(raw); err != nil {
				if !send(asyncMsg{seq: it.seq, final: true, err: badInput("vector: %v", err)}) {
					return
				}
				continue
			}
			id := it.p.id
			if id == nil {
				id = aimodel.AppendPointID(nil, aimodel.NameUUID(it.ev.Data))
			}
			payload := it.p.payload
			if payload == nil && len(field) == 1 {
				payload = withoutField(it.ev.Data, top)
			} else if payload == nil {
				payload = it.ev.Data
			}
			pts = append(pts, aimodel.AppendPoint(nil, id, vname, raw, payload))
			ok = append(ok, it.seq)
		}
		if len(pts) == 0 {
			return
		}
		requests.Add(1)
		err := client.UpsertRaw(ctx, collection, pts)
		var e *aimodel.Error
		if err != nil {
			e = aimodel.AsError(err)
			if e.Reason == aimodel.ReasonCircuitOpen {
				circuit.Add(uint64(len(ok)))
			}
		} else {
			points.Add(uint64(len(ok)))
		}
		for _, seq := range ok {
			if !send(asyncMsg{seq: seq, final: true, err: e}) {
				return
			}
		}
	}
	return n, nil
}
