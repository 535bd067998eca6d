package kms

import (
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/trentkms/trent/conformance"
)

var stateClause = devRef + "key-state.html"

// state fails the check unless DescribeKey says the key is in want (and
// Enabled agrees), returning the metadata.
func (e *Env) state(t *conformance.T, what string, id *string, want types.KeyState) *types.KeyMetadata {
	out, err := e.Client.DescribeKey(t.Context(), &awskms.DescribeKeyInput{KeyId: id})
	must(t, what+": DescribeKey", err)
	md := out.KeyMetadata
	equal(t, what+": KeyState", want, md.KeyState)
	equal(t, what+": Enabled", want == types.KeyStateEnabled, md.Enabled)
	return md
}

func (e *Env) stateChecks() []conformance.Check {
	return []conformance.Check{{
		ID:        "KMS-STATE-001",
		Statement: "CreateKey with no parameters makes an Enabled customer-managed SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key of origin AWS_KMS, which DescribeKey and ListResourceTags describe alike",
		Clause:    apiRef + "API_CreateKey.html#API_CreateKey_ResponseSyntax; " + apiRef + "API_KeyMetadata.html",
		Mutation:  "kms.create-key-tags-dropped",
		Run: func(t *conformance.T) {
			md := e.newKey(t, nil)
			for what, m := range map[string]*types.KeyMetadata{"CreateKey": md, "DescribeKey": e.state(t, "the new key", md.KeyId, types.KeyStateEnabled)} {
				equal(t, what+": KeyState", types.KeyStateEnabled, m.KeyState)
				equal(t, what+": KeySpec", types.KeySpecSymmetricDefault, m.KeySpec)
				equal(t, what+": KeyUsage", types.KeyUsageTypeEncryptDecrypt, m.KeyUsage)
				equal(t, what+": KeyManager", types.KeyManagerTypeCustomer, m.KeyManager)
				equal(t, what+": Origin", types.OriginTypeAwsKms, m.Origin)
				equal(t, what+": KeyId", aws.ToString(md.KeyId), aws.ToString(m.KeyId))
				equal(t, what+": Arn", aws.ToString(md.Arn), aws.ToString(m.Arn))
				if !slices.Contains(m.EncryptionAlgorithms, types.EncryptionAlgorithmSpecSymmetricDefault) {
					t.Mismatch(what+": EncryptionAlgorithms", "[SYMMETRIC_DEFAULT]", m.EncryptionAlgorithms)
				}
				if m.DeletionDate != nil {
					t.Mismatch(what+": DeletionDate", "absent", m.DeletionDate)
				}
			}
			tags, err := e.Client.ListResourceTags(t.Context(), &awskms.ListResourceTagsInput{KeyId: md.KeyId})
			must(t, "ListResourceTags", err)
			found := false
			for _, tg := range tags.Tags {
				found = found || aws.ToString(tg.TagKey) == TagKey && aws.ToString(tg.TagValue) == TagValue
			}
			if !found {
				t.Mismatch("ListResourceTags", TagKey+"="+TagValue+" (given to CreateKey)", fmt.Sprintf("%d tags without it", len(tags.Tags)))
			}
		},
	}, {
		ID:        "KMS-STATE-002",
		Statement: "DisableKey makes a key Disabled (still described), EnableKey makes it Enabled again, and ciphertexts made before decrypt again",
		Clause:    stateClause + "; " + apiRef + "API_DisableKey.html; " + apiRef + "API_EnableKey.html",
		Mutation:  "kms.disable-key-not-idempotent",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k := e.newKey(t, nil)
			ct := e.encrypt(t, k.KeyId, []byte("kept"), nil)
			_, err := e.Client.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: k.KeyId})
			must(t, "DisableKey", err)
			e.state(t, "after DisableKey", k.KeyId, types.KeyStateDisabled)
			_, err = e.Client.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: k.KeyId})
			must(t, "DisableKey of a disabled key (idempotent)", err)
			_, err = e.Client.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: k.KeyId})
			must(t, "EnableKey", err)
			e.state(t, "after EnableKey", k.KeyId, types.KeyStateEnabled)
			e.decrypts(t, "Decrypt after re-enabling", ct, nil, "kept")
		},
	}, {
		ID:        "KMS-STATE-003",
		Statement: "ScheduleKeyDeletion (7 days) makes a key PendingDeletion with a DeletionDate 7 days on; Enable/DisableKey and a second ScheduleKeyDeletion fail with KMSInvalidStateException; CancelKeyDeletion leaves it Disabled",
		Clause:    stateClause + "; " + apiRef + "API_ScheduleKeyDeletion.html; " + apiRef + "API_CancelKeyDeletion.html",
		Mutation:  "kms.schedule-deletion-reschedules",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k := e.newKey(t, nil)
			ct := e.encrypt(t, k.KeyId, []byte("kept"), nil)
			before := time.Now()
			out, err := e.Client.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(7)})
			must(t, "ScheduleKeyDeletion", err)
			equal(t, "ScheduleKeyDeletion: KeyState", types.KeyStatePendingDeletion, out.KeyState)
			equal(t, "ScheduleKeyDeletion: PendingWindowInDays", int32(7), aws.ToInt32(out.PendingWindowInDays))
			equal(t, "ScheduleKeyDeletion: KeyId (the key ARN)", aws.ToString(k.Arn), aws.ToString(out.KeyId))
			week := 7 * 24 * time.Hour
			if out.DeletionDate == nil || out.DeletionDate.Before(before.Add(week-time.Hour)) || out.DeletionDate.After(before.Add(week+25*time.Hour)) {
				t.Mismatch("ScheduleKeyDeletion: DeletionDate", "about "+before.Add(week).UTC().Format(time.RFC3339), out.DeletionDate)
			}
			md := e.state(t, "pending deletion", k.KeyId, types.KeyStatePendingDeletion)
			if md.DeletionDate == nil {
				t.Mismatch("DescribeKey: DeletionDate", "set", "absent")
			}
			_, err = e.Client.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: k.KeyId})
			expectCode(t, "EnableKey of a key pending deletion", err, "KMSInvalidStateException")
			_, err = e.Client.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: k.KeyId})
			expectCode(t, "DisableKey of a key pending deletion", err, "KMSInvalidStateException")
			_, err = e.Client.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(7)})
			expectCode(t, "ScheduleKeyDeletion of a key pending deletion", err, "KMSInvalidStateException")
			_, err = e.Client.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: k.KeyId})
			must(t, "CancelKeyDeletion", err)
			md = e.state(t, "after CancelKeyDeletion", k.KeyId, types.KeyStateDisabled)
			if md.DeletionDate != nil {
				t.Mismatch("after CancelKeyDeletion: DeletionDate", "absent", md.DeletionDate)
			}
			_, err = e.Client.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: k.KeyId})
			must(t, "EnableKey after CancelKeyDeletion", err)
			e.decrypts(t, "Decrypt after the cancelled deletion", ct, nil, "kept")
		},
	}, {
		ID:        "KMS-STATE-004",
		Statement: "CancelKeyDeletion of an Enabled key fails with KMSInvalidStateException; a Disabled key can be scheduled for deletion, and CancelKeyDeletion returns it to Disabled",
		Clause:    stateClause + "; " + apiErr("CancelKeyDeletion", "KMSInvalidStateException"),
		Mutation:  "kms.cancel-deletion-of-enabled-key",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k := e.newKey(t, nil)
			_, err := e.Client.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: k.KeyId})
			expectCode(t, "CancelKeyDeletion of an Enabled key", err, "KMSInvalidStateException")
			_, err = e.Client.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: k.KeyId})
			must(t, "DisableKey", err)
			_, err = e.Client.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(7)})
			must(t, "ScheduleKeyDeletion of a Disabled key", err)
			e.state(t, "the disabled key scheduled for deletion", k.KeyId, types.KeyStatePendingDeletion)
			_, err = e.Client.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: k.KeyId})
			must(t, "CancelKeyDeletion", err)
			e.state(t, "after CancelKeyDeletion", k.KeyId, types.KeyStateDisabled)
		},
	}, {
		ID:        "KMS-STATE-005",
		Statement: "ScheduleKeyDeletion with PendingWindowInDays 6 or 31 fails with ValidationException and leaves the key Enabled",
		Clause:    apiParam("ScheduleKeyDeletion", "request", "PendingWindowInDays"),
		Mutation:  "kms.pending-window-unchecked",
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			for _, d := range []int32{6, 31} {
				_, err := e.Client.ScheduleKeyDeletion(t.Context(), &awskms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(d)})
				expectCode(t, fmt.Sprintf("ScheduleKeyDeletion PendingWindowInDays %d", d), err, "ValidationException")
				e.state(t, fmt.Sprintf("after ScheduleKeyDeletion PendingWindowInDays %d", d), k.KeyId, types.KeyStateEnabled)
			}
		},
	}}
}
