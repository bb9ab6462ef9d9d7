// Command agent is an AI agent that streams its responses into a streamd
// room, token by token, as agent_response messages:
//
//	{"type":"agent_response","agent_id":"…","request_id":"…","index":N,"delta":"…","done":false}
//
// and a last one with "done": true. Run streamd (`make run`), then
//
//	go run ./examples/agent -prompt "why is the sky blue?"
//	go run ./examples/consumer            # in another terminal
//
// The tokens here come from a canned answer; plug a model in place of
// answer(). streamd's `llm` pipeline op does the same from an
// OpenAI-compatible server (docs/ai.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"streamd/client"
)

func main() {
	url := flag.String("url", "ws://127.0.0.1:8080/ws", "streamd WebSocket endpoint")
	room := flag.String("room", "agents.answers", "room to stream the response into")
	prompt := flag.String("prompt", "why is the sky blue?", "the question to answer")
	every := flag.Duration("every", 40*time.Millisecond, "delay between tokens")
	flag.Parse()
	ctx := context.Background()
	if err := run(ctx, *url, *room, *prompt, *every); err != nil {
		log.Fatal(err)
	}
}

// run connects and streams one answer to prompt into room.
func run(ctx context.Context, url, room, prompt string, every time.Duration) error {
	host, _ := os.Hostname()
	agentID := "agent-" + host
	c, err := client.Dial(ctx, url, client.Options{Producer: agentID + fmt.Sprint(time.Now().UnixNano())})
	if err != nil {
		return err
	}
	defer c.Close()
	reqID := fmt.Sprintf("req-%d", time.Now().UnixNano())
	tokens := answer(prompt)
	for i, tok := range tokens {
		msg := map[string]any{"type": "agent_response", "agent_id": agentID, "request_id": reqID,
			"index": i, "delta": tok, "done": false}
		if _, err := c.Publish(ctx, room, msg); err != nil {
			return fmt.Errorf("token %d: %w", i, err)
		}
		time.Sleep(every)
	}
	_, err = c.Publish(ctx, room, map[string]any{"type": "agent_response", "agent_id": agentID, "request_id": reqID,
		"index": len(tokens), "delta": "", "done": true, "confidence": 0.92})
	return err
}

// answer is the agent's "model": a canned answer cut into tokens.
func answer(prompt string) []string {
	text := "Sunlight scatters off the molecules of the air, and blue light, with its shorter wavelength, " +
		"scatters the most (Rayleigh scattering), so the sky looks blue."
	if !strings.Contains(strings.ToLower(prompt), "sky") {
		text = "I only know about the sky, for now."
	}
	return strings.SplitAfter(text, " ")
}
