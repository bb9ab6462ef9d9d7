package layering

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
	Name       string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "streamd/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// forbidden[p] lists the streamd packages p must not import.
var forbidden = map[string][]string{
	"streamd/ring":          {"streamd/"}, // ring imports nothing of ours
	"streamd/protocol":      {"streamd/"},
	"streamd/netpoll":       {"streamd/engine", "streamd/operators", "streamd/state", "streamd/protocol"},
	"streamd/operators":     {"streamd/netpoll", "streamd/engine", "streamd/pipeline", "streamd/protocol"},
	"streamd/pipeline":      {"streamd/netpoll", "streamd/engine"},
	"streamd/alerts":        {"streamd/netpoll", "streamd/engine", "streamd/pipeline"},
	"streamd/internal/hist": {"streamd/"},
	"streamd/state":         {"streamd/netpoll"},
}

func TestLayering(t *testing.T) {
	for _, p := range listPackages(t) {
		for _, bad := range forbidden[p.ImportPath] {
			for _, imp := range p.Imports {
				if strings.HasPrefix(imp, bad) {
					t.Errorf("%s imports %s: DESIGN.md forbids %s → %s", p.ImportPath, imp, p.ImportPath, bad)
				}
			}
		}
	}
}

func TestEveryPackageHasADoc(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package doc comment: add a doc.go saying what it owns", p.ImportPath)
		}
	}
}
