// Command consumer joins the rooms agents and pipelines write to and acts
// on what it reads, with one handler per message type:
//
//   - agent_response: prints each streamed delta as it comes, and the
//     whole answer when done;
//   - analysis_update: acts when the analysis is confident (confidence >
//     0.8), ignores it otherwise.
//
// Run streamd (`make run`) and this, then the agent (examples/agent), or
// publish an analysis_update yourself:
//
//	go run ./examples/consumer
//	go run ./examples/agent
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"

	"streamd/client"
)

func main() {
	url := flag.String("url", "ws://127.0.0.1:8080/ws", "streamd WebSocket endpoint")
	rooms := flag.String("rooms", "agents.answers,analysis", "rooms to join, comma-separated")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *url, strings.Split(*rooms, ","), os.Stdout); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}

// agentResponse and analysisUpdate are the data of the two types.
type agentResponse struct {
	AgentID   string `json:"agent_id"`
	RequestID string `json:"request_id"`
	Index     int    `json:"index"`
	Delta     string `json:"delta"`
	Done      bool   `json:"done"`
}

type analysisUpdate struct {
	Symbol     string  `json:"symbol"`
	Signal     string  `json:"signal"`
	Confidence float64 `json:"confidence"`
}

// run joins rooms and handles their messages until ctx ends.
func run(ctx context.Context, url string, rooms []string, out io.Writer) error {
	c, err := client.New(client.Config{URL: url, Compression: true})
	if err != nil {
		return err
	}
	defer c.Close()
	answers := map[string]*strings.Builder{}
	c.OnMessage("agent_response", func(m client.Message) {
		var r agentResponse
		if json.Unmarshal(m.Data, &r) != nil {
			return
		}
		b := answers[r.RequestID]
		if b == nil {
			b = &strings.Builder{}
			answers[r.RequestID] = b
		}
		b.WriteString(r.Delta)
		if r.Done {
			fmt.Fprintf(out, "answer %s from %s: %s\n", r.RequestID, r.AgentID, b.String())
			delete(answers, r.RequestID)
		}
	})
	c.OnMessage("analysis_update", func(m client.Message) {
		var u analysisUpdate
		if json.Unmarshal(m.Data, &u) != nil {
			return
		}
		if u.Confidence > 0.8 {
			fmt.Fprintf(out, "ACT on %s: %s (confidence %.2f)\n", u.Symbol, u.Signal, u.Confidence)
		} else {
			fmt.Fprintf(out, "ignore %s: confidence %.2f\n", u.Symbol, u.Confidence)
		}
	})
	c.OnDisconnect(func(err error) { fmt.Fprintf(out, "disconnected: %v (reconnecting)\n", err) })
	if err := c.Connect(ctx); err != nil {
		return err
	}
	for _, r := range rooms {
		if err := c.Join(ctx, r, func(client.Message) {}); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "joined %s\n", strings.Join(rooms, ", "))
	<-ctx.Done()
	return ctx.Err()
}
