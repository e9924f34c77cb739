package examples_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardenhq/warden/examples"
	"github.com/wardenhq/warden/internal/policy"
)

// TestPolicySuites runs every *_test.yaml suite in this directory, as
// `warden policy test` would, so CI keeps the shipped policies honest.
func TestPolicySuites(t *testing.T) {
	suites, err := filepath.Glob("*_test.yaml")
	if err != nil || len(suites) == 0 {
		t.Fatalf("no suites found: %v", err)
	}
	for _, s := range suites {
		t.Run(s, func(t *testing.T) {
			res, err := policy.RunSuiteFile(s)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.Results {
				if !r.Passed {
					t.Error(r.Failure)
				}
			}
			if len(res.Results) < 10 {
				t.Errorf("only %d cases in %s", len(res.Results), s)
			}
		})
	}
}

func TestEmbeddedDemoPolicy(t *testing.T) {
	disk, err := os.ReadFile("policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(disk, examples.DemoPolicy) {
		t.Fatal("embedded policy differs from policy.yaml")
	}
	p, err := policy.Load(examples.DemoPolicyName, examples.DemoPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.MaskProfiles(); len(got) != 1 || got[0] != "default" {
		t.Errorf("mask profiles = %v, want [default]", got)
	}
}
