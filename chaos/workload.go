package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/trentkms/trent/kmsload"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// Endpoint is one host's KMS API.
type Endpoint struct {
	Host string // "host-1"
	URL  string
}

// Workload drives concurrent clients against the hosts' KMS endpoints
// and records every operation in History. Clients are spread over the
// endpoints round-robin; each sends one request at a time, with the SDK's
// retries off.
type Workload struct {
	History   *History
	Endpoints []Endpoint
	Clients   int // default 6
	Region    string
	Account   string // the account ID of the credentials
	Creds     aws.Credentials
	// Timeout bounds each request (default 5 s): one that times out is
	// retryable.
	Timeout time.Duration
	// Think is each client's pause between requests (default 10 ms).
	Think time.Duration

	mu      sync.Mutex
	keys    []string // acknowledged CreateKey
	aliases []string // acknowledged CreateAlias
	cts     []int    // acknowledged ciphertexts
	seq     int      // alias names and policy tags
	clients map[string]*kms.Client
}

func (w *Workload) client(ep Endpoint) *kms.Client {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.clients == nil {
		w.clients = map[string]*kms.Client{}
	}
	if c, ok := w.clients[ep.URL]; ok {
		return c
	}
	// kmsload's client: SDK retries off (a retryable answer is recorded as
	// one); each request is bounded by w.Timeout, well within the
	// transport's own timeout.
	c := kmsload.NewClient(kmsload.Config{Endpoint: ep.URL, Region: w.Region,
		AccessKeyID: w.Creds.AccessKeyID, SecretAccessKey: w.Creds.SecretAccessKey}, kmsload.NewHTTPClient(16))
	w.clients[ep.URL] = c
	return c
}

// Run runs the clients until ctx is done; requests in flight then finish.
func (w *Workload) Run(ctx context.Context) {
	if w.Clients == 0 {
		w.Clients = 6
	}
	if w.Timeout == 0 {
		w.Timeout = 5 * time.Second
	}
	if w.Think == 0 {
		w.Think = 10 * time.Millisecond
	}
	var wg sync.WaitGroup
	for i := range w.Clients {
		ep := w.Endpoints[i%len(w.Endpoints)]
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			for ctx.Err() == nil {
				w.step(i, ep, rng)
				select {
				case <-ctx.Done():
				case <-time.After(w.Think):
				}
			}
		})
	}
	wg.Wait()
}

// classify turns an SDK error into an outcome: OK, Retryable (5xx, the
// retryable KMS exceptions, throttling, timeouts, connection errors), or a
// permanent error's code.
func classify(err error) (string, string) {
	if err == nil {
		return OK, ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "KMSInternalException", "DependencyTimeoutException", "ThrottlingException", "ServiceUnavailableException",
			"InternalFailure", "RequestTimeout",
			// The host's optimistic concurrency: nothing was done, retry.
			"ConflictException":
			return Retryable, ae.ErrorCode() + ": " + ae.ErrorMessage()
		}
		var re *awshttp.ResponseError
		if errors.As(err, &re) && (re.HTTPStatusCode() >= 500 || re.HTTPStatusCode() == 429) {
			return Retryable, ae.ErrorCode() + ": " + ae.ErrorMessage()
		}
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500 && re.HTTPStatusCode() != 429 {
		return fmt.Sprintf("HTTP%d", re.HTTPStatusCode()), err.Error()
	}
	return Retryable, err.Error()
}

// do runs f as op on ep and records it.
func (w *Workload) do(client int, ep Endpoint, op Op, f func(ctx context.Context, c *kms.Client, op *Op) error) Op {
	c := w.client(ep)
	op.Client, op.Host = client, ep.Host
	if op.Kind != Decrypt {
		op.CT = -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.Timeout)
	defer cancel()
	op.Call = w.History.Now()
	err := f(ctx, c, &op)
	op.Return = w.History.Now()
	op.Outcome, op.Message = classify(err)
	op.ID = w.History.Add(op)
	return op
}

func pick[T any](rng *mrand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// step runs one randomly chosen operation.
func (w *Workload) step(client int, ep Endpoint, rng *mrand.Rand) {
	w.mu.Lock()
	keys, aliases, cts := w.keys, w.aliases, w.cts
	w.seq++
	seq := w.seq
	w.mu.Unlock()
	if len(keys) < 3 {
		w.createKey(client, ep, false)
		return
	}
	key := pick(rng, keys)
	switch n := rng.IntN(100); {
	case n < 4:
		w.createKey(client, ep, false)
	case n < 16:
		w.describeKey(client, ep, key, false)
	case n < 20 && len(aliases) > 0:
		w.describeAlias(client, ep, pick(rng, aliases), false)
	case n < 25:
		alias := fmt.Sprintf("alias/chaos-%d", seq)
		if len(aliases) > 0 && rng.IntN(5) == 0 {
			alias = pick(rng, aliases) // AlreadyExistsException expected
		}
		w.do(client, ep, Op{Kind: CreateAlias, Alias: alias, Target: key}, func(ctx context.Context, c *kms.Client, op *Op) error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: &op.Alias, TargetKeyId: &op.Target})
			if err == nil {
				w.mu.Lock()
				w.aliases = append(w.aliases, op.Alias)
				w.mu.Unlock()
			}
			return err
		})
	case n < 30 && len(aliases) > 0:
		w.do(client, ep, Op{Kind: UpdateAlias, Alias: pick(rng, aliases), Target: key}, func(ctx context.Context, c *kms.Client, op *Op) error {
			_, err := c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: &op.Alias, TargetKeyId: &op.Target})
			return err
		})
	case n < 35:
		tag := fmt.Sprintf("chaos-%d", seq)
		w.do(client, ep, Op{Kind: PutKeyPolicy, Key: key, Policy: tag}, func(ctx context.Context, c *kms.Client, op *Op) error {
			_, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: &op.Key, Policy: aws.String(policyDoc(w.Account, tag))})
			return err
		})
	case n < 44:
		w.getKeyPolicy(client, ep, key, false)
	case n < 48:
		w.toggle(client, ep, key, true, false)
	case n < 51:
		w.toggle(client, ep, key, false, false)
	case n < 68:
		pt := make([]byte, 32)
		rand.Read(pt)
		w.do(client, ep, Op{Kind: Encrypt, Key: key}, func(ctx context.Context, c *kms.Client, op *Op) error {
			out, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: &op.Key, Plaintext: pt})
			if err == nil {
				op.CT = w.addCiphertext(Ciphertext{Key: op.Key, Blob: out.CiphertextBlob, Plaintext: pt})
			}
			return err
		})
	case n < 76:
		w.do(client, ep, Op{Kind: GenerateDataKey, Key: key}, func(ctx context.Context, c *kms.Client, op *Op) error {
			out, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: &op.Key, NumberOfBytes: aws.Int32(32)})
			if err == nil {
				op.CT = w.addCiphertext(Ciphertext{Key: op.Key, Blob: out.CiphertextBlob, Plaintext: out.Plaintext})
			}
			return err
		})
	case len(cts) > 0:
		w.decrypt(client, ep, pick(rng, cts), false)
	default:
		w.describeKey(client, ep, key, false)
	}
}

func (w *Workload) addCiphertext(ct Ciphertext) int {
	i := w.History.AddCiphertext(ct)
	w.mu.Lock()
	w.cts = append(w.cts, i)
	w.mu.Unlock()
	return i
}

func (w *Workload) createKey(client int, ep Endpoint, final bool) Op {
	return w.do(client, ep, Op{Kind: CreateKey, Final: final}, func(ctx context.Context, c *kms.Client, op *Op) error {
		out, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("chaos")})
		if err == nil {
			op.Key = *out.KeyMetadata.KeyId
			w.mu.Lock()
			w.keys = append(w.keys, op.Key)
			w.mu.Unlock()
		}
		return err
	})
}

func (w *Workload) describeKey(client int, ep Endpoint, key string, final bool) Op {
	return w.do(client, ep, Op{Kind: DescribeKey, Key: key, Final: final}, func(ctx context.Context, c *kms.Client, op *Op) error {
		out, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &op.Key})
		if err == nil {
			op.Enabled = out.KeyMetadata.KeyState == types.KeyStateEnabled
		}
		return err
	})
}

func (w *Workload) describeAlias(client int, ep Endpoint, alias string, final bool) Op {
	return w.do(client, ep, Op{Kind: DescribeAlias, Alias: alias, Final: final}, func(ctx context.Context, c *kms.Client, op *Op) error {
		out, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &op.Alias})
		if err == nil {
			op.Target = *out.KeyMetadata.KeyId
		}
		return err
	})
}

func (w *Workload) getKeyPolicy(client int, ep Endpoint, key string, final bool) Op {
	return w.do(client, ep, Op{Kind: GetKeyPolicy, Key: key, Final: final}, func(ctx context.Context, c *kms.Client, op *Op) error {
		out, err := c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: &op.Key})
		if err == nil {
			op.Policy = policyTag(aws.ToString(out.Policy))
		}
		return err
	})
}

func (w *Workload) toggle(client int, ep Endpoint, key string, enable, final bool) Op {
	kind := DisableKey
	if enable {
		kind = EnableKey
	}
	return w.do(client, ep, Op{Kind: kind, Key: key, Final: final}, func(ctx context.Context, c *kms.Client, op *Op) error {
		if enable {
			_, err := c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: &op.Key})
			return err
		}
		_, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: &op.Key})
		return err
	})
}

func (w *Workload) decrypt(client int, ep Endpoint, i int, final bool) Op {
	ct := w.History.Ciphertext(i)
	return w.do(client, ep, Op{Kind: Decrypt, Key: ct.Key, CT: i, Final: final}, func(ctx context.Context, c *kms.Client, op *Op) error {
		out, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct.Blob})
		if err == nil {
			op.Wrong = !bytes.Equal(out.Plaintext, ct.Plaintext)
		}
		return err
	})
}

// policyDoc is a key policy that gives the account's principals every
// KMS action (as the default one does), told apart by its Id.
func policyDoc(account, tag string) string {
	doc, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17", "Id": tag,
		"Statement": []any{map[string]any{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
			"Principal": map[string]any{"AWS": "arn:aws:iam::" + account + ":root"}, "Action": "kms:*", "Resource": "*"}},
	})
	return string(doc)
}

// policyTag is a policy's Id ("default" for KMS's default policy).
func policyTag(doc string) string {
	var p struct{ Id string }
	if json.Unmarshal([]byte(doc), &p) != nil || p.Id == "" {
		return "unparsable"
	}
	if p.Id == "key-default-1" {
		return "default"
	}
	return p.Id
}

// Verify checks, after healing, that every acknowledged key and alias is
// found and every acknowledged ciphertext opens to its plaintext on every
// endpoint, each item retried until it succeeds or until limit. It first
// enables every key (Decrypt needs it). Every try is recorded (Final).
func (w *Workload) Verify(limit time.Duration) {
	w.mu.Lock()
	keys, aliases, cts := append([]string(nil), w.keys...), append([]string(nil), w.aliases...), append([]int(nil), w.cts...)
	w.mu.Unlock()
	deadline := time.Now().Add(limit)
	var items []func(client int, ep Endpoint) Op
	for _, k := range keys {
		items = append(items, func(c int, ep Endpoint) Op { return w.toggle(c, ep, k, true, true) })
	}
	w.each(items, w.Endpoints[:1], deadline)
	items = items[:0]
	for _, k := range keys {
		items = append(items, func(c int, ep Endpoint) Op { return w.describeKey(c, ep, k, true) },
			func(c int, ep Endpoint) Op { return w.getKeyPolicy(c, ep, k, true) })
	}
	for _, a := range aliases {
		items = append(items, func(c int, ep Endpoint) Op { return w.describeAlias(c, ep, a, true) })
	}
	for _, i := range cts {
		items = append(items, func(c int, ep Endpoint) Op { return w.decrypt(c, ep, i, true) })
	}
	w.each(items, w.Endpoints, deadline)
}

// each runs every item on every endpoint, a few at a time, retrying one
// that fails until deadline.
func (w *Workload) each(items []func(int, Endpoint) Op, eps []Endpoint, deadline time.Time) {
	type job struct {
		f  func(int, Endpoint) Op
		ep Endpoint
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for c := range w.Clients {
		wg.Go(func() {
			for j := range jobs {
				for {
					op := j.f(w.Clients+c, j.ep)
					if op.Outcome == OK || time.Now().After(deadline) {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
		})
	}
	for _, f := range items {
		for _, ep := range eps {
			jobs <- job{f, ep}
		}
	}
	close(jobs)
	wg.Wait()
}
