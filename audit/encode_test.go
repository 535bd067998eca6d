package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/trentkms/trent/internal/strictjson"
)

// sameAsMarshal fails t unless AppendJSON and json.Marshal agree on e:
// the same bytes, or both an error.
func sameAsMarshal(t *testing.T, e *Event) {
	t.Helper()
	want, werr := json.Marshal(e)
	got, gerr := e.AppendJSON([]byte("prefix"))
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("json.Marshal: %v, AppendJSON: %v", werr, gerr)
	}
	if werr == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("AppendJSON\n%s\njson.Marshal\n%s", got[len("prefix"):], want)
	}
}

func TestAppendJSON(t *testing.T) {
	at := time.Date(2026, 12, 2, 9, 0, 0, 123456789, time.UTC)
	full := &Event{
		EventVersion: Version, EventTime: at, EventSource: Source, EventName: "Encrypt", AWSRegion: "eu-west-1",
		SourceIPAddress: "127.0.0.1", UserAgent: "aws-sdk-go-v2/1.36.3 <&> \u2028 \x01 \xff é",
		UserIdentity:      &UserIdentity{Type: "IAMUser", ARN: "arn:aws:iam::1:user/alice", AccountID: "1", AccessKeyID: "AKIA"},
		RequestParameters: map[string]any{"keyId": "alias/a", "encryptionContext": map[string]any{"b": "2", "a": "1"}, "n": 8.0, "x": []any{true, nil, 1e21, 1e-7, -0.5, "s"}, "dryRun": false},
		ResponseElements:  map[string]any{},
		ErrorCode:         "E", ErrorMessage: "m\"\\\n\t\r\b\f", KeyID: "arn:aws:kms:eu-west-1:1:key/k",
		AdditionalEventData: map[string]any{"pcrs": map[int]string{0: "aa"}, "list": []string{"x"}, "n": 3, "raw": json.RawMessage(`{"a" : 1}`)},
		RequestID:           "r", EventID: "e", ReadOnly: true, EventType: EventType,
	}
	sameAsMarshal(t, full)
	sameAsMarshal(t, &Event{})
	sameAsMarshal(t, &Event{EventTime: at.In(time.FixedZone("x", 3600))})
	sameAsMarshal(t, &Event{EventTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}) // both refuse
	sameAsMarshal(t, &Event{EventTime: at, AdditionalEventData: map[string]any{"nan": math.NaN()}})
	sameAsMarshal(t, &Event{EventTime: at, RequestParameters: map[string]any{"x": []any(nil), "y": map[string]any(nil)}})
}

// FuzzAppendJSON: AppendJSON writes what json.Marshal writes, for events
// whose strings and maps come from the fuzzer (maps as encoding/json
// decodes a JSON object, as Redact makes them).
func FuzzAppendJSON(f *testing.F) {
	f.Add("Encrypt", "aws-sdk <&>", "\u2028\xff", `{"KeyId":"k","EncryptionContext":{"a":"b"},"N":1.5e-7,"L":[true,null,1e300]}`, int64(1_800_000_000_123))
	f.Add("", "", "", `{}`, int64(0))
	f.Add("x", "\x00\x1f\"\\", "é", `{"a":[],"b":{},"c":-0,"d":123456789012345678901234567890}`, int64(-62135596800000))
	f.Fuzz(func(t *testing.T, name, agent, msg, params string, ms int64) {
		e := &Event{EventVersion: Version, EventTime: time.UnixMilli(ms).UTC(), EventSource: Source, EventName: name, UserAgent: agent,
			ErrorMessage: msg, KeyID: msg, RequestID: name, EventID: agent, ReadOnly: len(name)%2 == 0, EventType: EventType}
		if len(agent) > 0 {
			e.UserIdentity = &UserIdentity{Type: name, ARN: agent, AccountID: msg, AccessKeyID: name}
		}
		var m map[string]any
		if json.Unmarshal([]byte(params), &m) == nil {
			e.RequestParameters, e.ResponseElements = m, Redact([]byte(params))
			if len(m)%2 == 1 {
				e.AdditionalEventData = m
			}
		}
		sameAsMarshal(t, e)
	})
}

// redactReference is Redact as it was before decodeValue and the
// interned names: every kept value decoded by encoding/json.
func redactReference(body []byte) map[string]any {
	members, err := strictjson.Members(body)
	if err != nil {
		return nil
	}
	out := make(map[string]any, len(members))
	for _, m := range members {
		if secret(m.Key) || m.Key == "" {
			continue
		}
		var v any
		if json.Unmarshal(m.Value, &v) != nil {
			return nil
		}
		out[lowerFirst(m.Key)] = v
	}
	return out
}

// FuzzRedact: Redact gives what the plain decoding by encoding/json
// gives, for any body.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{`{"KeyId":"alias/a","Plaintext":"c2VjcmV0","EncryptionContext":{"k":"v","k":"w"},"NumberOfBytes":8}`,
		`{"EncryptionContext":{"a\u0001":"b","\u00e9":"\xff","c":"\"d"}}`, "{\"EncryptionContext\":{\"a\x01\":\"b\"}}", `{"E":{}}`, `{"E":{"a":1}}`,
		`{"E":{"a":"b"}x}`, `{"E":{"a":"b",}}`, `{"KeyId":"é","keyId":"x"}`, `{"E":{"a" : "b" , "c":"d"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, want := Redact(in), redactReference(in)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Redact(%q) = %#v, want %#v", in, got, want)
		}
	})
}
