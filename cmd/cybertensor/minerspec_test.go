package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cybertensor/cybertensor/subnet"
)

// A miner takes a locked spec (as "subnets spec" prints it) without the
// files it names, which only validators need; an unlocked one is locked
// against its files, as everywhere else, so they must be there.
func TestMinerSpecNeedsNoFilesOnceLocked(t *testing.T) {
	src := "../../localnet/testdata/headline"
	text, err := os.ReadFile(filepath.Join(src, "spec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := subnet.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	locked, err := subnet.Lock(spec, src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() // no tasks.jsonl here
	lockedFile, unlockedFile := filepath.Join(dir, "locked.yaml"), filepath.Join(dir, "unlocked.yaml")
	os.WriteFile(lockedFile, locked.Text(), 0o644)
	os.WriteFile(unlockedFile, text, 0o644)
	got, err := minerSpec(lockedFile, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != locked.Hash() {
		t.Fatal("the locked spec changed on loading")
	}
	if _, err := minerSpec(unlockedFile, ""); err == nil || !strings.Contains(err.Error(), "tasks.jsonl") {
		t.Fatalf("an unlocked spec without its files: %v", err)
	}
	if got, err := minerSpec(filepath.Join(src, "spec.yaml"), ""); err != nil || got.Hash() != locked.Hash() {
		t.Fatalf("an unlocked spec beside its files: %v", err)
	}
	if got, err := minerSpec("", "qa"); err != nil || got.Name != "qa" {
		t.Fatalf("a built-in: %v", err)
	}
}
