package kms

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/trentkms/trent/internal/strictjson"
)

// The slow types are the requests without their DecodeFast (same
// fields, no methods): strictjson.Unmarshal decodes them the usual way.
type (
	slowEncrypt         encryptRequest
	slowDecrypt         decryptRequest
	slowGenerateDataKey generateDataKeyRequest
)

// fastKind is one request type with DecodeFast and its slow twin.
type fastKind struct {
	name string
	fast func() strictjson.FastDecoder // a fresh *T
	slow func() any                    // a fresh *slowT
}

var fastKinds = []fastKind{
	{"Encrypt", func() strictjson.FastDecoder { return new(encryptRequest) }, func() any { return new(slowEncrypt) }},
	{"Decrypt", func() strictjson.FastDecoder { return new(decryptRequest) }, func() any { return new(slowDecrypt) }},
	{"GenerateDataKey", func() strictjson.FastDecoder { return new(generateDataKeyRequest) }, func() any { return new(slowGenerateDataKey) }},
}

// checkFast fails t unless DecodeFast of body, when it decodes it, gives
// the value the usual path gives, and unless strictjson.Unmarshal (which
// tries DecodeFast first) answers exactly as the usual path does, error
// messages included. It reports whether DecodeFast decoded body.
func checkFast(t testing.TB, k fastKind, body []byte) bool {
	t.Helper()
	f := k.fast()
	fast := f.DecodeFast(body)
	s := k.slow()
	serr := strictjson.Unmarshal(body, len(body), s)
	sv := reflect.ValueOf(s).Elem().Convert(reflect.TypeOf(f).Elem()).Interface()
	if fast {
		if serr != nil {
			t.Fatalf("%s %q: DecodeFast decodes it, the usual path refuses it: %v", k.name, body, serr)
		}
		if fv := reflect.ValueOf(f).Elem().Interface(); !reflect.DeepEqual(fv, sv) {
			t.Fatalf("%s %q:\nDecodeFast  %#v\nusual path  %#v", k.name, body, fv, sv)
		}
	}
	u := k.fast()
	uerr := strictjson.Unmarshal(body, len(body), u)
	if errText(uerr) != errText(serr) {
		t.Fatalf("%s %q: Unmarshal: %v; the usual path: %v", k.name, body, uerr, serr)
	}
	if uv := reflect.ValueOf(u).Elem().Interface(); serr == nil && !reflect.DeepEqual(uv, sv) {
		t.Fatalf("%s %q:\nUnmarshal   %#v\nusual path  %#v", k.name, body, uv, sv)
	}
	return fast
}

// errText is err's message, with the slow types named as the requests
// (encoding/json's messages name the type).
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return slowNames.Replace(err.Error())
}

var slowNames = strings.NewReplacer("slowEncrypt", "encryptRequest", "slowDecrypt", "decryptRequest", "slowGenerateDataKey", "generateDataKeyRequest")

// sdkBodies are the bodies aws-sdk-go-v2 sends for the three operations,
// with and without their optional members, by operation.
func sdkBodies(t *testing.T) map[string][][]byte {
	t.Helper()
	c := &bodyCapture{}
	cl := awskms.NewFromConfig(aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""), HTTPClient: c},
		func(o *awskms.Options) { o.BaseEndpoint = aws.String("http://127.0.0.1:1") })
	ctx := context.Background()
	arn := "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-4000-8000-000000000001"
	ec := map[string]string{"app": "bench", "tenant": "a", "quote\"&<>": "ünïcode\n\t\u2028"}
	grants := []string{"grant-token-1", "grant-token-2"}
	blob := bytes.Repeat([]byte{0xfb, 0xff, 0x00}, 60)
	calls := []struct {
		op   string
		call func() error
	}{
		{"Encrypt", func() error {
			_, err := cl.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(arn), Plaintext: make([]byte, 64)})
			return err
		}},
		{"Encrypt", func() error {
			_, err := cl.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String("alias/app"), Plaintext: blob, EncryptionContext: ec,
				GrantTokens: grants, EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault, DryRun: aws.Bool(true)})
			return err
		}},
		{"Decrypt", func() error {
			_, err := cl.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blob})
			return err
		}},
		{"Decrypt", func() error {
			_, err := cl.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec, GrantTokens: grants, KeyId: aws.String(arn),
				EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault, DryRun: aws.Bool(false)})
			return err
		}},
		{"GenerateDataKey", func() error {
			_, err := cl.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256})
			return err
		}},
		{"GenerateDataKey", func() error {
			_, err := cl.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: aws.String(arn), NumberOfBytes: aws.Int32(32), EncryptionContext: ec, GrantTokens: grants})
			return err
		}},
	}
	out := map[string][][]byte{}
	for _, c2 := range calls {
		if err := c2.call(); err != nil {
			t.Fatalf("%s: %v", c2.op, err)
		}
		if c.target != "TrentService."+c2.op {
			t.Fatalf("captured %q, want %s", c.target, c2.op)
		}
		out[c2.op] = append(out[c2.op], c.body)
	}
	return out
}

// bodyCapture is an HTTP client that keeps the request's body and
// answers {}.
type bodyCapture struct {
	target string
	body   []byte
}

func (c *bodyCapture) Do(r *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	c.target, c.body = r.Header.Get("X-Amz-Target"), b
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
}

// fastBodies are bodies DecodeFast must decode (by operation; "" for all
// three): the usual path decodes them too, to the same value.
var fastBodies = map[string][]string{
	"": {
		`{}`, " \t\r\n{ \t\r\n} \t\r\n",
		`{"EncryptionContext":{},"GrantTokens":[]}`,
		`{"EncryptionContext":{"a":"b","A":"c"},"GrantTokens":["t1","t2"],"DryRun":true}`,
		`{ "EncryptionContext" : { "a" : "b" , "c" : "" } , "GrantTokens" : [ "t" , "" ] , "DryRun" : false }`,
		"{\n  \"DryRun\": false,\n  \"EncryptionContext\": {\n    \"k\": \"v\"\n  }\n}\n",
		`{"EncryptionContext":{"\u0061b":"c\"d\\e\/f\b\f\n\r\t","\ud83d\ude00":"\u00e9\u4e2d"}}`,
		`{"EncryptionContext":{"ü":"中文😀","\u0000":"\u001f"}}`,
		`{"EncryptionContext":{"a":"1","\u0041":"2"}}`,
	},
	"Encrypt": {
		`{"KeyId":"alias/a","Plaintext":"AQID"}`,
		`{"KeyId":"","Plaintext":""}`,
		`{"Plaintext":"AQ==","KeyId":"k","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}`,
		`{"Plaintext":"AQ\r\nID","KeyId":"k\u00e9"}`, `{"Plaintext":"AQ=\r\n="}`, `{"Plaintext":"\nAQ==\r"}`,
		`{"Plaintext":"A\/\/\/"}`,
		`{"KeyId":"k","Plaintext":"AQID","EncryptionAlgorithm":"","DryRun":true,"GrantTokens":["x"],"EncryptionContext":{"a":"b"}}`,
	},
	"Decrypt": {
		`{"CiphertextBlob":"AQID"}`,
		`{"CiphertextBlob":"AQID","KeyId":"alias/a","EncryptionAlgorithm":"SYMMETRIC_DEFAULT","EncryptionContext":{"a":"b"}}`,
		`{"KeyId":""}`,
	},
	"GenerateDataKey": {
		`{"KeyId":"k","KeySpec":"AES_256"}`,
		`{"KeyId":"k","NumberOfBytes":32}`,
		`{"KeyId":"k","NumberOfBytes":0}`,
		`{"KeyId":"k","NumberOfBytes": 1024 }`,
		`{"NumberOfBytes":999999999999999999,"KeySpec":""}`,
		`{"NumberOfBytes":7,"KeySpec":"AES_128","EncryptionContext":{"a":"b"},"GrantTokens":["g"],"DryRun":false}`,
	},
}

// otherBodies are bodies DecodeFast declines (by operation; "" for all
// three): those the usual path refuses, and those it decodes that are
// left to it (null, escaped member names, Recipient, numbers with a sign,
// invalid UTF-8, lone surrogates).
var otherBodies = map[string][]string{
	"": {
		``, ` `, `[]`, `null`, `"x"`, `1`, "\xef\xbb\xbf{}",
		`{`, `}`, `{"DryRun":true`, `{"DryRun":true,}`, `{,}`, `{"DryRun" true}`, `{"DryRun":true}}`,
		`{} {}`, `{}x`, `{}]`, "{}\x00", "{\"DryRun\":true\x00}", `{"DryRun":true} null`,
		`{"DryRun":true,"DryRun":false}`, `{"DryRun":true,"Dry\u0052un":false}`,
		`{"dryRun":true}`, `{"DRYRUN":true}`, `{"Dry\u0052un":true}`, `{"Unknown":1}`, `{"Recipient":null}`,
		`{"DryRun":null}`, `{"DryRun":1}`, `{"DryRun":"true"}`, `{"DryRun":True}`, `{"DryRun":truex}`, `{"DryRun":tru}`,
		`{"EncryptionContext":null}`, `{"EncryptionContext":{"a":null}}`, `{"EncryptionContext":{"a":1}}`,
		`{"EncryptionContext":{"a":"b","a":"c"}}`, `{"EncryptionContext":{"a":"b","\u0061":"c"}}`,
		`{"EncryptionContext":{"a":"b",}}`, `{"EncryptionContext":{"a"}}`, `{"EncryptionContext":[]}`,
		`{"EncryptionContext":{"a":{"b":"c"}}}`,
		"{\"EncryptionContext\":{\"\xfd\":\"a\",\"\xfe\":\"b\"}}", "{\"EncryptionContext\":{\"a\":\"\xff\"}}",
		"{\"EncryptionContext\":{\"a\":\"\xed\xa0\x80\"}}",
		`{"EncryptionContext":{"a":"\ud83d"}}`, `{"EncryptionContext":{"a":"\ude00"}}`, `{"EncryptionContext":{"a":"\ud83d\u0041"}}`,
		`{"EncryptionContext":{"a":"\x"}}`, `{"EncryptionContext":{"a":"\u12"}}`, `{"EncryptionContext":{"a":"\u12g4"}}`,
		"{\"EncryptionContext\":{\"a\":\"tab\there\"}}", "{\"EncryptionContext\":{\"a\":\"\x00\"}}",
		`{"EncryptionContext":{"a":"b}`, `{"EncryptionContext":{"a":"b\"}}`,
		`{"GrantTokens":null}`, `{"GrantTokens":[null]}`, `{"GrantTokens":["a",]}`, `{"GrantTokens":[1]}`, `{"GrantTokens":"a"}`,
		`{"GrantTokens":["a" "b"]}`, `{"GrantTokens":[["a"]]}`,
	},
	"Encrypt": {
		`{"KeyId":null}`, `{"KeyId":1}`, `{"KeyId":["k"]}`, `{"keyid":"k"}`, `{"KeyId":"k","KeyId":"j"}`,
		`{"Plaintext":null}`, `{"Plaintext":[1,2]}`, `{"Plaintext":[]}`, `{"Plaintext":"AQI"}`, `{"Plaintext":"AQI=="}`,
		`{"Plaintext":"*"}`, `{"Plaintext":"AQ ID"}`, `{"Plaintext":"AQ\tID"}`, `{"Plaintext":"A\u00e9"}`,
		`{"Plaintext":"AQ==AQ=="}`, `{"Plaintext":"AQ-_"}`,
		`{"EncryptionAlgorithm":null}`, `{"CiphertextBlob":"AQ=="}`, `{"NumberOfBytes":1}`,
		`{"KeyId":"k","Plaintext":"AQID","Recipient":{"KeyEncryptionAlgorithm":"RSAES_OAEP_SHA_256"}}`,
	},
	"Decrypt": {
		`{"CiphertextBlob":null}`, `{"CiphertextBlob":[1]}`, `{"CiphertextBlob":"AQI"}`, `{"CiphertextBlob":"AQ==","CiphertextBlob":"AQ=="}`,
		`{"KeyId":null}`, `{"KeyId":1}`, `{"Plaintext":"AQ=="}`, `{"ciphertextBlob":"AQ=="}`,
		`{"CiphertextBlob":"AQ==","Recipient":{"AttestationDocument":"AQ==","KeyEncryptionAlgorithm":"RSAES_OAEP_SHA_256"}}`,
		`{"CiphertextBlob":"AQ==","Recipient":{"AttestationDocument":[1]}}`,
	},
	"GenerateDataKey": {
		`{"NumberOfBytes":null}`, `{"NumberOfBytes":-1}`, `{"NumberOfBytes":-0}`, `{"NumberOfBytes":1.0}`, `{"NumberOfBytes":1e2}`,
		`{"NumberOfBytes":1E2}`, `{"NumberOfBytes":01}`, `{"NumberOfBytes":00}`, `{"NumberOfBytes":+1}`, `{"NumberOfBytes":"32"}`,
		`{"NumberOfBytes":1000000000000000000}`, `{"NumberOfBytes":99999999999999999999999}`, `{"NumberOfBytes":9223372036854775808}`,
		`{"NumberOfBytes":32x}`, `{"NumberOfBytes":32,"NumberOfBytes":32}`, `{"NumberOfBytes":}`, `{"NumberOfBytes":.5}`,
		`{"KeySpec":null}`, `{"KeySpec":1}`, `{"Keyspec":"AES_256"}`, `{"Plaintext":"AQ=="}`,
		`{"KeyId":"k","Recipient":{"AttestationDocument":"AQ==","KeyEncryptionAlgorithm":"RSAES_OAEP_SHA_256"}}`,
	},
}

// TestRequestsDecodeFast: DecodeFast decodes the bodies the SDK sends and
// the other usual shapes, to the value the usual path gives, and declines
// the rest, which the usual path then answers as it always has.
func TestRequestsDecodeFast(t *testing.T) {
	sdk := sdkBodies(t)
	for _, k := range fastKinds {
		if len(sdk[k.name]) == 0 {
			t.Fatalf("no SDK body for %s", k.name)
		}
		for _, body := range sdk[k.name] {
			if !checkFast(t, k, body) {
				t.Errorf("%s: the SDK's %s is not decoded by DecodeFast", k.name, body)
			}
		}
		for _, body := range append(fastBodies[""], fastBodies[k.name]...) {
			if !checkFast(t, k, []byte(body)) {
				t.Errorf("%s: %s is not decoded by DecodeFast", k.name, body)
			}
		}
		for _, body := range append(otherBodies[""], otherBodies[k.name]...) {
			if checkFast(t, k, []byte(body)) {
				t.Errorf("%s: %s is decoded by DecodeFast", k.name, body)
			}
		}
	}
	// The usual path's refusals, as the protocol layer words them.
	var r encryptRequest
	if err := strictjson.Unmarshal([]byte(`{"KeyId":"k","keyId":"j"}`), 100, &r); err == nil || !strings.Contains(err.Error(), `unknown field "keyId"`) {
		t.Errorf("wrong case: %v", err)
	}
}

// fuzzDecodeFast seeds f with every body of the tests and checks kind k's
// DecodeFast against the usual path.
func fuzzDecodeFast(f *testing.F, k fastKind) {
	for _, bodies := range []map[string][]string{fastBodies, otherBodies} {
		for _, list := range bodies {
			for _, b := range list {
				f.Add([]byte(b))
			}
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFast(t, k, body)
	})
}

// FuzzDecodeFastEncrypt: whatever encryptRequest's DecodeFast decodes,
// the usual path decodes to the same value; whatever that refuses,
// DecodeFast declines; Unmarshal answers as the usual path does.
func FuzzDecodeFastEncrypt(f *testing.F) { fuzzDecodeFast(f, fastKinds[0]) }

// FuzzDecodeFastDecrypt is FuzzDecodeFastEncrypt for decryptRequest.
func FuzzDecodeFastDecrypt(f *testing.F) { fuzzDecodeFast(f, fastKinds[1]) }

// FuzzDecodeFastGenerateDataKey is FuzzDecodeFastEncrypt for
// generateDataKeyRequest.
func FuzzDecodeFastGenerateDataKey(f *testing.F) { fuzzDecodeFast(f, fastKinds[2]) }
