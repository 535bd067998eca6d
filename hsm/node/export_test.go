package node

import "github.com/trentkms/trent/domain"

// Exporter lends a test the node's token-held keys, to forge tokens that a
// malicious or buggy member HSM could sign.
func (n *Node) Exporter() domain.Exporter { return n.exporter() }
