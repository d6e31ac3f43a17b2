package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The README is the newcomer's map: it must list every setting and every package.
func TestReadmeIsTrue(t *testing.T) {
	root := "../../.."
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for _, k := range EnvKeys() {
		if !strings.Contains(readme, "`"+k+"`") {
			t.Errorf("README's configuration table does not list %s", k)
		}
	}
	for _, dir := range []string{"services", "pkg", "cmd"} {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() && e.Name() != "internal" && !strings.Contains(readme, "`"+dir+"/"+e.Name()+"`") {
				t.Errorf("README's 'Finding your way around' does not list %s/%s", dir, e.Name())
			}
		}
	}
	for _, cmd := range []string{"go run ./cmd/gridd", "make test"} {
		if !strings.Contains(readme, cmd) {
			t.Errorf("README does not give %q", cmd)
		}
	}
}
