package client_test

import (
	"context"
	"fmt"

	"streamd/client"
	"streamd/engine"
)

func Example() {
	// An engine in process, for the example; a real program dials its server.
	e, err := engine.New(engine.Config{Listen: "127.0.0.1:0", Auth: engine.AuthConfig{Anonymous: true}})
	if err != nil {
		panic(err)
	}
	if err := e.Start(); err != nil {
		panic(err)
	}
	defer e.Close(context.Background())
	ctx := context.Background()

	c, err := client.Dial(ctx, "ws://"+e.Addr().String()+"/ws", client.Options{Producer: "example"})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	got := make(chan client.Message, 1)
	if err := c.Join(ctx, "chat", func(m client.Message) { got <- m }); err != nil {
		panic(err)
	}
	seq, err := c.Publish(ctx, "chat", map[string]string{"text": "hello"})
	if err != nil {
		panic(err)
	}
	m := <-got
	fmt.Println(seq, m.Room, string(m.Data))
	// Output: 1 chat {"text":"hello"}
}
