package session

import "crypto"

// ResignReply signs r as an HSM would (a buggy or malicious one, in tests).
func ResignReply(r *Reply, hello []byte, signer crypto.Signer) ([]byte, error) {
	unsigned, err := r.unsigned()
	if err != nil {
		return nil, err
	}
	return sign(signer, labelReply, hash384(hello), unsigned)
}
