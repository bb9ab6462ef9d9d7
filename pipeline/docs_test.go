package pipeline

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"streamd/operators"
)

// docHost records what a docs example's outputs did, in order.
type docHost struct{ got []string }

func (h *docHost) Publish(room string, data []byte) error {
	h.got = append(h.got, "room "+room+" "+string(data))
	return nil
}

func (h *docHost) Reply(ev *Event, data []byte) { h.got = append(h.got, "reply "+string(data)) }

// docFiles are the docs whose ```yaml blocks TestDocsExamples runs and
// whose "### `op`" sections TestEveryOpIsDocumented looks for.
var docFiles = []string{"../docs/pipelines.md", "../docs/ai.md"}

// TestDocsExamples loads every ```yaml block of docFiles as a config file
// and runs it: each `# in STREAM: JSON` comment feeds one
// event, `# advance: DURATION` moves the fake clock, `# drain` flushes, and
// the outputs must be exactly the `# out: …` lines, in order ("room NAME
// JSON" or "reply JSON"). So the examples in the docs cannot rot.
func TestDocsExamples(t *testing.T) {
	for _, f := range docFiles {
		t.Run(strings.TrimSuffix(f[len("../docs/"):], ".md"), func(t *testing.T) { runDocExamples(t, f) })
	}
}

func runDocExamples(t *testing.T, file string) {
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(docURLs(t).Replace(string(src))) // model and vector servers: fakes on loopback (ai_fakes_test.go)
	name := file[len("../"):]
	type block struct {
		line int
		text string
	}
	var blocks []block
	sc := bufio.NewScanner(strings.NewReader(string(src)))
	var cur *block
	n := 0
	for sc.Scan() {
		n++
		l := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(l) == "```yaml":
			cur = &block{line: n + 1}
		case cur != nil && strings.TrimSpace(l) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		}
	}
	if len(blocks) < 1 {
		t.Fatalf("found %d yaml blocks in %s", len(blocks), name)
	}
	ran := 0
	for _, b := range blocks {
		var cfg struct {
			Pipelines []Spec `yaml:"pipelines"`
		}
		if err := yaml.UnmarshalWithOptions([]byte(b.text), &cfg); err != nil {
			t.Errorf("%s:%d: %v", name, b.line, err)
			continue
		}
		if len(cfg.Pipelines) == 0 {
			continue // a fragment, not a config
		}
		ran++
		clk := operators.NewFakeClock(time.Unix(1700000000, 0))
		h := &docHost{}
		var pipes []*Pipeline
		ok := true
		for _, spec := range cfg.Pipelines {
			f := operators.NewFlow(operators.FlowOptions{Clock: clk})
			p, err := Build(spec, f, Options{Host: h}, nil)
			if err != nil {
				t.Errorf("%s:%d: %v", name, b.line, err)
				ok = false
				break
			}
			_ = f.Open()
			pipes = append(pipes, p)
		}
		if !ok {
			continue
		}
		var want []string
		for i, l := range strings.Split(b.text, "\n") {
			l = strings.TrimSpace(l)
			if !strings.HasPrefix(l, "# ") {
				continue
			}
			l = l[2:]
			switch {
			case strings.HasPrefix(l, "in "):
				stream, data, _ := strings.Cut(l[3:], ": ")
				for _, p := range pipes {
					if p.Stream() == stream {
						ev := NewEvent(stream, []byte(data), clk.Now())
						ev.Origin = "doc"
						p.Input().PushOne(ev)
					}
				}
			case strings.HasPrefix(l, "advance: "):
				d, err := time.ParseDuration(l[9:])
				if err != nil {
					t.Errorf("%s:%d: %v", name, b.line+i, err)
				}
				clk.Add(d)
				for _, p := range pipes {
					p.Flow.Advance()
				}
			case l == "drain":
				for _, p := range pipes {
					p.Flow.Drain()
				}
			case strings.HasPrefix(l, "out: "):
				want = append(want, l[5:])
			}
		}
		if strings.Join(h.got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:%d: outputs\n%s\nwant\n%s", name, b.line, strings.Join(h.got, "\n"), strings.Join(want, "\n"))
		}
		for _, p := range pipes {
			_ = p.Flow.Close()
			_ = p.Close()
		}
	}
	t.Logf("ran %d examples", ran)
}

// TestEveryOpIsDocumented: each registered op has its own section in
// docs/pipelines.md.
func TestEveryOpIsDocumented(t *testing.T) {
	var src []byte
	for _, f := range docFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, b...)
	}
	for _, name := range DefaultRegistry().Names() {
		if !strings.Contains(string(src), "### `"+name+"`") {
			t.Errorf("op %s has no \"### `%s`\" section in docs/pipelines.md or docs/ai.md", name, name)
		}
	}
}
