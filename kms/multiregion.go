package kms

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/trentkms/trent/keystore"
)

// Multi-Region keys (docs/protocol.md, Multi-Region keys): a key made with
// MultiRegion true has an mrk- key ID, which is the same in every region
// that holds a copy; one region's copy is the primary key, the others are
// replicas. Each region's record knows the primary's region and every
// region holding the key (keystore.MultiRegion); the KMS API shows them as
// the MultiRegionConfiguration of the key's metadata.

// newMultiRegionKeyID is a multi-Region key ID: "mrk-" and 32 lower case
// hex digits (16 random bytes).
func newMultiRegionKeyID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "mrk-" + hex.EncodeToString(b)
}

// multiRegionKey is an entry of MultiRegionConfiguration.
type multiRegionKey struct {
	Arn    string `json:"Arn"`
	Region string `json:"Region"`
}

// multiRegionConfiguration is the AWS KMS API's MultiRegionConfiguration.
type multiRegionConfiguration struct {
	MultiRegionKeyType string           `json:"MultiRegionKeyType"` // PRIMARY or REPLICA
	PrimaryKey         *multiRegionKey  `json:"PrimaryKey"`
	ReplicaKeys        []multiRegionKey `json:"ReplicaKeys"`
}

// multiRegionConfigOf is k's MultiRegionConfiguration, nil for a
// single-Region key. ReplicaKeys lists every region holding the key but
// the primary's, in region order.
func multiRegionConfigOf(k *keystore.Key) *multiRegionConfiguration {
	mr := k.MultiRegion
	if mr == nil {
		return nil
	}
	c := &multiRegionConfiguration{MultiRegionKeyType: "REPLICA", ReplicaKeys: []multiRegionKey{},
		PrimaryKey: &multiRegionKey{Arn: k.ARNIn(mr.PrimaryRegion), Region: mr.PrimaryRegion}}
	if k.IsPrimary() {
		c.MultiRegionKeyType = "PRIMARY"
	}
	for _, r := range mr.Regions {
		if r != mr.PrimaryRegion {
			c.ReplicaKeys = append(c.ReplicaKeys, multiRegionKey{Arn: k.ARNIn(r), Region: r})
		}
	}
	return c
}
