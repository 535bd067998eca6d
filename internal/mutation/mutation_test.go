package mutation_test

import (
	"testing"

	"github.com/trentkms/trent/internal/mutation"
)

func TestOnOff(t *testing.T) {
	if mutation.On("x") {
		t.Fatal("a mutation is on without Set")
	}
	if !mutation.Enabled {
		defer func() {
			if recover() == nil {
				t.Fatal("Set in a product build did not panic")
			}
		}()
		mutation.Set("x")
		return
	}
	mutation.Set("x")
	defer mutation.Set("")
	if !mutation.On("x") || mutation.On("y") {
		t.Fatal("Set does not select exactly one mutation")
	}
}
