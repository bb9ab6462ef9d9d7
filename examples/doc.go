// Package examples holds runnable programs that use streamd's clients:
// agent (an AI agent streaming agent_response messages into a room),
// consumer (handlers per message type acting on what it reads) and
// web/live.html (a page showing a room live with the browser client).
// examples_test.go runs the two Go programs against a real engine.
package examples
