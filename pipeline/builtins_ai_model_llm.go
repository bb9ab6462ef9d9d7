package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"streamd/aimodel"
	"streamd/operators"
)

// The agent_response message (docs/ai.md) is what an llm node streams:
//
//	{"type":"agent_response","agent_id":A,"request_id":R,"index":I,"delta":TEXT,"done":false}
//
// one per delta, index 0, 1, 2, … in order, then one final message with
// "done":true and "delta":"" whose index follows the last delta's. The
// final message carries "finish_reason" (when the server gave one) and
// "usage" {"prompt_tokens","completion_tokens","total_tokens"} (when the
// server reported it), or, when the stream failed, "error" (a message)
// and "reason" (a word, as in error records).

// llmPayload is what an llm worker needs of an event.
type llmPayload struct {
	body  []byte // the request
	reqID []byte // request_id, JSON
	room  string // "" with reply or nothing
}

func buildLLM(c *BuildContext) (operators.Node, error) {
	s := c.Node.LLM
	if s == nil {
		return nil, c.Errorf("", "op llm needs llm: {url: …, model: …, prompt: …}")
	}
	if s.Model == "" {
		return nil, c.Errorf("llm", "needs model")
	}
	if s.Prompt == "" {
		return nil, c.Errorf("llm", "needs prompt: a template like \"Summarise: {{text}}\"")
	}
	prompt, err := parseTemplate(s.Prompt)
	if err != nil {
		return nil, c.Errorf("llm", "prompt %v", err)
	}
	var system, room *template
	if s.System != "" {
		if system, err = parseTemplate(s.System); err != nil {
			return nil, c.Errorf("llm", "system %v", err)
		}
	}
	if s.Reply && s.Room != "" {
		return nil, c.Errorf("llm", "give reply or room, not both")
	}
	if s.Room != "" {
		if room, err = parseTemplate(s.Room); err != nil {
			return nil, c.Errorf("llm", "room %v", err)
		}
	}
	if (s.Reply || s.Room != "") && c.Opts.Host == nil {
		return nil, c.Errorf("llm", "streaming to a reply or a room needs a host (an engine)")
	}
	var reqX *Expr
	if s.RequestID != "" {
		if reqX, err = c.Expr("llm", s.RequestID, false); err != nil {
			return nil, err
		}
	}
	field, err := fieldName(c, "llm", s.Field, "response")
	if err != nil {
		return nil, err
	}
	if len(field) != 1 {
		return nil, c.Errorf("llm", "field %q: want a top-level name", s.Field)
	}
	if s.MaxTokens < 0 || s.IdleTimeout < 0 || s.ListenCheck < 0 {
		return nil, c.Errorf("llm", "max_tokens, idle_timeout and listen_check must not be negative")
	}
	sv, err := buildService(c, "llm", &s.ServiceSpec, "OPENAI_API_KEY", 4)
	if err != nil {
		return nil, err
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	idle := s.IdleTimeout
	if idle == 0 {
		idle = 30 * time.Second
	}
	check := s.ListenCheck
	if check == 0 {
		check = 250 * time.Millisecond
	}
	agentID := s.AgentID
	if agentID == "" {
		agentID = c.Node.Name
	}
	an := newAsyncNode[llmPayload](c.Node.Name, "llm", sv.conc, sv.maxIn, 1, 0, sv.overErr) // default max_in_flight: 4 × concurrency
	an.closers = append(an.closers, sv.close)
	st := an.stats
	sv.policy.Retried = st.Counter("retries")
	client := &aimodel.Client{BaseURL: s.URL, APIKey: sv.apiKey, Headers: s.Headers, HTTP: sv.http, Timeout: timeout, Policy: sv.policy}
	promptTok, complTok := st.Counter("prompt_tokens"), st.Counter("completion_tokens")
	requests, cancelled, deltas := st.Counter("requests"), st.Counter("cancelled"), st.Counter("deltas")
	circuit := st.Counter("circuit_open")
	host := c.Opts.Host
	lh, _ := host.(ListenerHost)
	rep := c.reporter(func() *operators.Stats { return nil })
	reply := s.Reply
	var seq uint64
	nodeName := c.Node.Name
	model, maxTok, temp := s.Model, s.MaxTokens, s.Temperature

	an.prep = func(ev *Event) (llmPayload, *asyncMsg) {
		var p llmPayload
		var msgs []aimodel.ChatMessage
		if system != nil {
			t, err := system.render(ev)
			if err != nil {
				return p, &asyncMsg{err: badInput("system: %v", err)}
			}
			msgs = append(msgs, aimodel.ChatMessage{Role: "system", Content: t})
		}
		t, err := prompt.render(ev)
		if err != nil {
			return p, &asyncMsg{err: badInput("prompt: %v", err)}
		}
		msgs = append(msgs, aimodel.ChatMessage{Role: "user", Content: t})
		if room != nil {
			if p.room, err = room.render(ev); err != nil || p.room == "" {
				return p, &asyncMsg{err: badInput("room: %v", err)}
			}
		}
		seq++
		switch {
		case reqX != nil:
			b, _, err := reqX.JSON(ev)
			if err != nil {
				return p, &asyncMsg{err: badInput("request_id: %v", err)}
			}
			p.reqID = b
		case len(ev.ID) > 0:
			p.reqID = ev.ID
		default:
			p.reqID = appendJSONString(nil, nodeName+"-"+strconv.FormatUint(seq, 10))
		}
		req := aimodel.ChatRequest{Model: model, Messages: msgs, MaxTokens: maxTok, Temperature: temp}
		p.body = req.Body()
		return p, nil
	}
	// side delivers an agent_response message (flow goroutine, as Host wants).
	an.side = func(sl *asyncSlot[llmPayload], m *asyncMsg) {
		switch {
		case reply:
			if sl.ev.Origin != nil {
				host.Reply(&sl.ev, m.data)
			}
		case sl.p.room != "":
			if err := host.Publish(sl.p.room, m.data); err != nil {
				rep.note(err, "agent_response to room "+sl.p.room)
			}
		}
	}
	streaming := reply || room != nil
	listening := func(ev *Event, p *llmPayload) bool {
		switch {
		case lh == nil || !streaming:
			return true
		case reply:
			return lh.Connected(ev)
		default:
			return lh.Listening(p.room)
		}
	}
	errNobody := &aimodel.Error{Reason: aimodel.ReasonCancelled, Err: errors.New("nobody listens any more")}

	an.work = func(ctx context.Context, items []asyncItem[llmPayload], send func(asyncMsg) bool) {
		for i := range items {
			it := &items[i]
			if !listening(&it.ev, &it.p) {
				cancelled.Add(1)
				if !send(asyncMsg{seq: it.seq, final: true, drop: true}) {
					return
				}
				continue
			}
			requests.Add(1)
			rctx, cancel := context.WithCancelCause(ctx)
			var last atomic.Int64
			last.Store(time.Now().UnixNano())
			watchdog := make(chan struct{})
			go func() { // ends the stream when nobody listens or it idles
				defer close(watchdog)
				t := time.NewTicker(min(check, idle))
				defer t.Stop()
				for {
					select {
					case <-rctx.Done():
						return
					case now := <-t.C:
						if !listening(&it.ev, &it.p) {
							cancel(errNobody)
							return
						}
						if now.UnixNano()-last.Load() > int64(idle) {
							cancel(&aimodel.Error{Reason: aimodel.ReasonTimeout, Err: fmt.Errorf("no chunk for %v", idle)})
							return
						}
					}
				}
			}()
			index := 0
			res, err := client.ChatStream(rctx, it.p.body, func(delta string) error {
				last.Store(time.Now().UnixNano())
				msg := appendAgentResponse(nil, agentID, it.p.reqID, index, delta, false)
				index++
				deltas.Add(1)
				if streaming && !send(asyncMsg{seq: it.seq, data: msg}) {
					return aimodel.ErrStopped
				}
				return nil
			})
			cancel(nil)
			<-watchdog
			if ctx.Err() != nil {
				return // closing: nobody reads what we would send
			}
			final := appendAgentResponse(nil, agentID, it.p.reqID, index, "", true)
			final = final[:len(final)-1] // reopen the object
			var result asyncMsg
			if err != nil {
				e := aimodel.AsError(err)
				if e.Reason == aimodel.ReasonCircuitOpen {
					circuit.Add(1)
				}
				final = append(final, `,"error":`...)
				final = appendJSONString(final, firstLine(e.Error()))
				final = append(final, `,"reason":`...)
				final = appendJSONString(final, string(e.Reason))
				if e.Reason == aimodel.ReasonCancelled { // nobody listens: not a failure
					cancelled.Add(1)
					result = asyncMsg{seq: it.seq, final: true, drop: true}
				} else {
					result = asyncMsg{seq: it.seq, final: true, err: e}
				}
			} else {
				if res.FinishReason != "" {
					final = append(final, `,"finish_reason":`...)
					final = appendJSONString(final, res.FinishReason)
				}
				usage := []byte("null")
				if u := res.Usage; u != nil {
					promptTok.Add(uint64(u.PromptTokens))
					complTok.Add(uint64(u.CompletionTokens))
					usage = appendUsage(nil, u)
					final = append(final, `,"usage":`...)
					final = append(final, usage...)
				}
				data := setFields(it.ev.Data, []string{field[0], "usage"}, [][]byte{appendJSONString(nil, res.Text), usage})
				result = asyncMsg{seq: it.seq, final: true, data: data}
			}
			final = append(final, '}')
			if streaming && !send(asyncMsg{seq: it.seq, data: final}) {
				return
			}
			if !send(result) {
				return
			}
		}
	}
	return an, nil
}

// appendAgentResponse appends one agent_response message.
func appendAgentResponse(dst []byte, agentID string, reqID []byte, index int, delta string, done bool) []byte {
	dst = append(dst, `{"type":"agent_response","agent_id":`...)
	dst = appendJSONString(dst, agentID)
	dst = append(dst, `,"request_id":`...)
	dst = append(dst, reqID...)
	dst = append(dst, `,"index":`...)
	dst = strconv.AppendInt(dst, int64(index), 10)
	dst = append(dst, `,"delta":`...)
	dst = appendJSONString(dst, delta)
	dst = append(dst, `,"done":`...)
	dst = strconv.AppendBool(dst, done)
	return append(dst, '}')
}

func appendUsage(dst []byte, u *aimodel.Usage) []byte {
	dst = append(dst, `{"prompt_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.PromptTokens), 10)
	dst = append(dst, `,"completion_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.CompletionTokens), 10)
	dst = append(dst, `,"total_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.TotalTokens), 10)
	return append(dst, '}')
}
