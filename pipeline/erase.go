package pipeline

import "fmt"

// Erased is one record Erase removed.
type Erased struct {
	Pipeline string `json:"pipeline"`
	Node     string `json:"node"`
	Kind     string `json:"kind"` // "state" (a state sink's key) or "session"
	Key      string `json:"key"`
}

// eraser is a node that holds records by key.
type eraser interface {
	erase(key string) (kind string, held bool, err error)
}

// Erase removes what the pipeline's nodes hold under key — a state
// sink's record, a session — durably (in a checkpointing pipeline, with
// its next checkpoint), and says what it removed: the admin call for a
// data-protection request (Engine.Erase). Flow goroutine only.
func (p *Pipeline) Erase(key string) ([]Erased, error) {
	var out []Erased
	for _, ns := range p.Spec.Nodes {
		b := p.nodes[ns.Name]
		if b == nil {
			continue
		}
		e, ok := b.node.(eraser)
		if !ok {
			continue
		}
		kind, held, err := e.erase(key)
		if err != nil {
			return out, fmt.Errorf("pipeline %q: node %q: erase: %w", p.Spec.Name, ns.Name, err)
		}
		if held {
			out = append(out, Erased{Pipeline: p.Spec.Name, Node: ns.Name, Kind: kind, Key: key})
		}
	}
	return out, nil
}
