package engine_test

import (
	"context"
	"fmt"
	"time"

	"streamd/engine"
)

// An engine embedded in a Go program: subscribe to a room and publish to it.
// WebSocket clients joined to the same room would receive the same messages.
func Example() {
	e, err := engine.New(engine.Config{Listen: "127.0.0.1:0", Auth: engine.AuthConfig{Anonymous: true}})
	if err != nil {
		panic(err)
	}
	if err := e.Start(); err != nil {
		panic(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = e.Close(ctx)
	}()

	got := make(chan string, 2)
	stop, err := e.Subscribe("orders.eu", func(m *engine.Message) {
		got <- fmt.Sprintf("%s #%d %s", m.Room(), m.Seq(), m.Data())
	})
	if err != nil {
		panic(err)
	}
	defer stop()

	_, _ = e.Publish("orders.eu", []byte(`{"id":1,"qty":5}`))
	_, _ = e.Publish("orders.eu", []byte(`{"id":2,"qty":1}`))
	fmt.Println(<-got)
	fmt.Println(<-got)
	// Output:
	// orders.eu #1 {"id":1,"qty":5}
	// orders.eu #2 {"id":2,"qty":1}
}
