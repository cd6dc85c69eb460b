package filter

import (
	"os"
	"path/filepath"
	"testing"
)

// The example rulesets in config/examples must compile, with the port
// names they use.
func TestExampleRulesets(t *testing.T) {
	files, err := filepath.Glob("../config/examples/*.nft")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	env := Env{Interfaces: map[string]int{"lan0": 0, "wan0": 1, "wg0": 2}}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Load(f, string(src), env); err != nil {
			t.Errorf("%v", err)
		}
	}
}
