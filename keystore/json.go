package keystore

import (
	"bytes"
	"encoding/json"
)

// jsonMarshal encodes v without HTML escaping (a policy's "<" stays "<"):
// deterministic, since struct fields keep their order and maps (a grant's
// constraints) encode with sorted keys.
func jsonMarshal(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
