package loadtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"streamd/engine"
	"streamd/engine/enginetest"
	"streamd/pipeline"
)

// benchPipelines loads the pipelines of bench/pipeline.yaml, the config
// the `pipeline` scenario is measured with, so it cannot rot.
func benchPipelines(t *testing.T) []pipeline.Spec {
	t.Helper()
	src, err := os.ReadFile("../bench/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Pipelines []pipeline.Spec `yaml:"pipelines"`
	}
	if err := yaml.Unmarshal(src, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Pipelines
}

// TestPipelineScenarioFiveStages drives the 5-stage benchmark pipeline:
// every event comes back as a result, none is lost, no error.
func TestPipelineScenarioFiveStages(t *testing.T) {
	e := enginetest.Start(t, engine.Config{Pipelines: benchPipelines(t)})
	res, err := Run(context.Background(), Options{Scenario: "pipeline", Addr: e.Addr().String(), Conns: 50, Rate: 2000,
		Duration: time.Second, Warmup: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	if res.ErrorAnswers != 0 || res.Lost != 0 || res.Received != res.Sent || res.Sent < 1500 {
		t.Fatalf("sent %d, received %d, lost %d, errors %d (%s)", res.Sent, res.Received, res.Lost, res.ErrorAnswers, res.FirstError)
	}
	for _, n := range e.PipelineStats()["load"] {
		if n.Errors != 0 {
			t.Errorf("node %s: %d errors", n.Name, n.Errors)
		}
	}
}
