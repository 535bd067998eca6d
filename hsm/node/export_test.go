package node

import (
	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/session"
)

// Exporter lends a test the node's token-held keys, to forge tokens that a
// malicious or buggy member HSM could sign.
func (n *Node) Exporter() domain.Exporter { return n.exporter() }

// ServeCommand runs one command through the node's handlers, as an envelope's
// plaintext would reach them.
func (n *Node) ServeCommand(c hsmcmd.Code, cmd []byte) ([]byte, error) {
	return n.commands()[uint16(c)](&session.Request{Type: uint16(c), Command: cmd})
}

// SealKeyToken seals material as a key token of spec for keyID under the
// active domain key, as a node of an earlier release would have.
func (n *Node) SealKeyToken(spec uint8, keyID string, material []byte) ([]byte, error) {
	return n.sealKeyToken(spec, keyID, material)
}

// DataKeyDraw prepares items as the node prepares a batch and reports how
// many commands it prepared (served from its one draw), then clears it.
func (n *Node) DataKeyDraw(items []hsmcmd.BatchItem) int {
	serve, done := n.dataKeyDraw(items)
	if done != nil {
		defer done()
	}
	prepared := 0
	for _, s := range serve {
		if s != nil {
			prepared++
		}
	}
	return prepared
}
