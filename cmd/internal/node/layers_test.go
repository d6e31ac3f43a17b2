package node_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// The dependency rule of STYLE.md: cmd → mobile-api → services → pkg, pkg imports
// nothing of ours but pkg/, and services import no HTTP framework.
func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "github.com/gridkeeper/gridkeeper/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/gridkeeper/gridkeeper/"
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		checked++
		self := strings.TrimPrefix(p.ImportPath, mod)
		for _, imp := range p.Imports {
			ours := strings.HasPrefix(imp, mod)
			dep := strings.TrimPrefix(imp, mod)
			switch {
			case strings.HasPrefix(self, "pkg/") && ours && !strings.HasPrefix(dep, "pkg/"):
				t.Errorf("%s imports %s: pkg/ imports only pkg/", self, dep)
			case strings.HasPrefix(self, "services/") && ours && (strings.HasPrefix(dep, "mobile-api") || strings.HasPrefix(dep, "cmd/")):
				t.Errorf("%s imports %s: services/ must not import upper layers", self, dep)
			case strings.HasPrefix(self, "services/") && strings.HasPrefix(imp, "github.com/gofiber/"):
				t.Errorf("%s imports %s: HTTP belongs in mobile-api/", self, imp)
			case strings.HasPrefix(self, "mobile-api") && ours && strings.HasPrefix(dep, "cmd/"):
				t.Errorf("%s imports %s: mobile-api must not import cmd/", self, dep)
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d packages listed", checked)
	}
}
