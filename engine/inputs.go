package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"sync"
	"time"

	"streamd/aimodel"
	"streamd/pipeline"
)

// inputRunner feeds a pipeline from a generator, a file or stdin, on its
// own goroutine, through the executor's bounded channel (so a slow
// pipeline slows the feed instead of losing events).
type inputRunner struct {
	spec   pipeline.InputSpec
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func sameInput(a, b pipeline.InputSpec) bool { return reflect.DeepEqual(a, b) }

func (r *inputRunner) stop() {
	r.cancel()
	r.wg.Wait()
}

// stdinReader is where stdin inputs read (a test seam).
var stdinReader io.Reader = os.Stdin

func startInput(e *Engine, rt *pipeRT, spec pipeline.InputSpec) *inputRunner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &inputRunner{spec: spec, cancel: cancel}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		var err error
		switch {
		case spec.Generator != nil:
			err = runGenerator(ctx, rt, *spec.Generator)
		case spec.File != "":
			var f *os.File
			if f, err = os.Open(spec.File); err == nil {
				err = readLines(ctx, rt, f, spec.File)
				f.Close()
			}
		case spec.Stdin:
			err = readLines(ctx, rt, stdinReader, "stdin")
		case spec.Documents != nil:
			err = readDocuments(ctx, rt, spec.Documents)
		}
		if err != nil && ctx.Err() == nil {
			e.cfg.Logger.Error("pipeline input stopped", "pipeline", rt.name, "err", err)
		}
	}()
	return r
}

// readDocuments feeds the files of a directory, polling for new ones
// (docs/ai.md, "documents input").
func readDocuments(ctx context.Context, rt *pipeRT, d *pipeline.DocumentsSpec) error {
	o := d.Options()
	o.Logger = rt.exec.e.cfg.Logger
	return aimodel.WatchDocuments(ctx, o, func(data []byte) error {
		ev := pipeline.NewEvent("", append([]byte(nil), data...), time.Now().UnixNano())
		return rt.exec.send(ctx, pipeIn{rt: rt, ev: ev})
	})
}

// readLines feeds one event per JSON line; blank lines are skipped and
// bad ones logged with their line number.
func readLines(ctx context.Context, rt *pipeRT, rd io.Reader, name string) error {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		if !json.Valid(b) {
			rt.exec.e.cfg.Logger.Warn("pipeline input: not JSON, skipped", "pipeline", rt.name, "source", name, "line", line)
			continue
		}
		ev := pipeline.NewEvent("", append([]byte(nil), b...), time.Now().UnixNano())
		if err := rt.exec.send(ctx, pipeIn{rt: rt, ev: ev}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s line %d: %w", name, line+1, err)
	}
	return nil
}

// runGenerator emits a synthetic feed at spec.Rate events per second.
func runGenerator(ctx context.Context, rt *pipeRT, g pipeline.GeneratorSpec) error {
	rate := g.Rate
	if rate == 0 {
		rate = 100
	}
	syms := g.Symbols
	if len(syms) == 0 {
		syms = []string{"AAPL", "MSFT", "NVDA", "AMZN", "GOOG"}
	}
	seed := g.Seed
	if seed == 0 {
		seed = 1
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	prices := make([]float64, len(syms))
	for i := range prices {
		prices[i] = 100 + 50*float64(i)
	}
	interval := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	var n int64
	var buf []byte
	for g.Limit == 0 || n < g.Limit {
		// Open loop: events are due at fixed times; when late, catch up.
		if d := time.Until(next); d > 0 {
			t.Reset(d)
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
		next = next.Add(interval)
		n++
		now := time.Now()
		buf = buf[:0]
		if g.Kind == "counter" {
			buf = append(buf, `{"n":`...)
			buf = strconv.AppendInt(buf, n, 10)
			buf = append(buf, '}')
		} else {
			i := rng.IntN(len(syms))
			prices[i] *= math.Exp(rng.NormFloat64() * 0.002)
			buf = append(buf, `{"symbol":"`...)
			buf = append(buf, syms[i]...)
			buf = append(buf, `","price":`...)
			buf = strconv.AppendFloat(buf, math.Round(prices[i]*100)/100, 'f', -1, 64)
			buf = append(buf, `,"qty":`...)
			buf = strconv.AppendInt(buf, int64(1+rng.IntN(500)), 10)
			buf = append(buf, `,"relevance_score":`...)
			buf = strconv.AppendFloat(buf, math.Round(rng.Float64()*1000)/1000, 'f', -1, 64)
			buf = append(buf, `,"ts":`...)
			buf = strconv.AppendInt(buf, now.UnixMilli(), 10)
			buf = append(buf, '}')
		}
		ev := pipeline.NewEvent("", append([]byte(nil), buf...), now.UnixNano())
		if err := rt.exec.send(ctx, pipeIn{rt: rt, ev: ev}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}
