package chain

import "testing"

func TestSetHyperparam(t *testing.T) {
	h := LocalnetHyperparams()
	if err := SetHyperparam(&h, "max_allowed_validators", 7); err != nil {
		t.Fatal(err)
	}
	if v, _ := HyperparamValue(h, "max_allowed_validators"); v != 7 || h.MaxAllowedValidators != 7 {
		t.Fatalf("max_allowed_validators %d", h.MaxAllowedValidators)
	}
	before := h
	for _, c := range []struct {
		name string
		v    uint64
	}{{"speed", 1}, {"max_allowed_uids", 0}, {"max_allowed_uids", 4097}, {"commit_reveal_weights_enabled", 2}} {
		if err := SetHyperparam(&h, c.name, c.v); err == nil {
			t.Errorf("%s = %d accepted", c.name, c.v)
		}
	}
	if h != before {
		t.Fatal("a refused value changed the hyperparameters")
	}
	// Every owner-settable hyperparameter is a known one.
	for _, name := range HyperparamNames() {
		if lo, _, ok := OwnerHyperparam(name); ok {
			if err := SetHyperparam(&h, name, lo); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}
