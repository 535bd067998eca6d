package kms

import (
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/trentkms/trent/conformance"
)

// Multi-Region keys, as far as one endpoint can check them: the primary
// key's metadata, and ReplicateKey's and UpdatePrimaryRegion's refusals
// that need no second region.

var mrkIDRE = regexp.MustCompile(`^mrk-[0-9a-f]{32}$`)

// otherRegion is a region other than the endpoint's.
func (e *Env) otherRegion() string {
	if e.Region == "us-west-2" {
		return "us-east-1"
	}
	return "us-west-2"
}

func (e *Env) multiRegionChecks() []conformance.Check {
	return []conformance.Check{{
		ID:        "KMS-MRK-001",
		Statement: "CreateKey with MultiRegion true makes a key whose ID is mrk- and 32 hex digits, MultiRegion true, and whose MultiRegionConfiguration (CreateKey's and DescribeKey's) is PRIMARY with the key itself, in the endpoint's region, as PrimaryKey and no ReplicaKeys; a key made without it is MultiRegion false with no configuration",
		Clause:    apiParam("CreateKey", "request", "MultiRegion") + "; " + apiRef + "API_MultiRegionConfiguration.html",
		Mutation:  "kms.mrk-primary-as-replica",
		Run: func(t *conformance.T) {
			md := e.newKey(t, &awskms.CreateKeyInput{MultiRegion: aws.Bool(true)})
			id := aws.ToString(md.KeyId)
			if !mrkIDRE.MatchString(id) {
				t.Mismatch("CreateKey's KeyId", "mrk- and 32 lower case hex digits", id)
			}
			d, err := e.Client.DescribeKey(t.Context(), &awskms.DescribeKeyInput{KeyId: md.KeyId})
			must(t, "DescribeKey", err)
			for what, m := range map[string]*types.KeyMetadata{"CreateKey": md, "DescribeKey": d.KeyMetadata} {
				equal(t, what+": MultiRegion", true, aws.ToBool(m.MultiRegion))
				c := m.MultiRegionConfiguration
				if c == nil || c.PrimaryKey == nil {
					t.Mismatch(what+": MultiRegionConfiguration", "PRIMARY with a PrimaryKey", "absent")
					return
				}
				equal(t, what+": MultiRegionKeyType", types.MultiRegionKeyTypePrimary, c.MultiRegionKeyType)
				equal(t, what+": PrimaryKey.Arn", aws.ToString(md.Arn), aws.ToString(c.PrimaryKey.Arn))
				equal(t, what+": PrimaryKey.Region", e.Region, aws.ToString(c.PrimaryKey.Region))
				equal(t, what+": ReplicaKeys", 0, len(c.ReplicaKeys))
			}
			single := e.newKey(t, nil)
			equal(t, "a single-Region key: MultiRegion", false, aws.ToBool(single.MultiRegion))
			if single.MultiRegionConfiguration != nil {
				t.Mismatch("a single-Region key: MultiRegionConfiguration", "absent", single.MultiRegionConfiguration.MultiRegionKeyType)
			}
		},
	}, {
		ID:        "KMS-MRK-002",
		Statement: "ReplicateKey and UpdatePrimaryRegion of a single-Region key fail with UnsupportedOperationException, and ReplicateKey with a ReplicaRegion that is no region name fails with ValidationException",
		Clause:    apiErr("ReplicateKey", "UnsupportedOperationException") + "; " + apiParam("ReplicateKey", "request", "ReplicaRegion") + "; " + apiErr("UpdatePrimaryRegion", "UnsupportedOperationException"),
		Mutation:  "kms.replica-region-unchecked",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			single := e.newKey(t, nil)
			_, err := e.Client.ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: single.KeyId, ReplicaRegion: aws.String(e.otherRegion())})
			expectCode(t, "ReplicateKey of a single-Region key", err, "UnsupportedOperationException")
			_, err = e.Client.UpdatePrimaryRegion(ctx, &awskms.UpdatePrimaryRegionInput{KeyId: single.KeyId, PrimaryRegion: aws.String(e.otherRegion())})
			expectCode(t, "UpdatePrimaryRegion of a single-Region key", err, "UnsupportedOperationException")
			mrk := e.newKey(t, &awskms.CreateKeyInput{MultiRegion: aws.Bool(true)})
			_, err = e.Client.ReplicateKey(ctx, &awskms.ReplicateKeyInput{KeyId: mrk.KeyId, ReplicaRegion: aws.String("Not_A_Region")})
			expectCode(t, "ReplicateKey to ReplicaRegion Not_A_Region", err, "ValidationException")
		},
	}}
}
