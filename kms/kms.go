package kms

import (
	"context"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/kms/kmsapi"
)

// generateRandom returns NumberOfBytes (1 to 1024) from an HSM's token RNG.
type generateRandomRequest struct {
	NumberOfBytes    *int       `json:"NumberOfBytes"`
	CustomKeyStoreId *string    `json:"CustomKeyStoreId"`
	Recipient        *recipient `json:"Recipient"`
}

func (s *Service) generateRandom(ctx context.Context, p kmsapi.Principal, req *generateRandomRequest) (*generateRandomResponse, error) {
	if req.NumberOfBytes == nil || *req.NumberOfBytes < 1 || *req.NumberOfBytes > hsmcmd.MaxRandom {
		v := 0
		if req.NumberOfBytes != nil {
			v = *req.NumberOfBytes
		}
		return nil, kmsapi.Errorf(kmsapi.ValidationException,
			"1 validation error detected: Value '%d' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024", v)
	}
	if req.CustomKeyStoreId != nil {
		if req.Recipient != nil {
			return nil, errStoreRecipient
		}
		b, err := s.randomFromStore(ctx, p, *req.CustomKeyStoreId, *req.NumberOfBytes)
		if err != nil {
			return nil, err
		}
		return &generateRandomResponse{Plaintext: b}, nil
	}
	if req.Recipient != nil {
		// GenerateRandom has no key, so no policy: the document alone.
		doc, _, err := s.checkRecipient(ctx, "GenerateRandom", true, req.Recipient)
		if err != nil {
			return nil, err
		}
		rr, err := s.viaRecipient(ctx, "GenerateRandom", doc, hsmcmd.RandomRequest{Size: uint16(*req.NumberOfBytes)}, nil)
		if err != nil {
			return nil, err
		}
		return &generateRandomResponse{CiphertextForRecipient: rr.CiphertextForRecipient}, nil
	}
	r, err := call(ctx, s, hsmcmd.RandomRequest{Size: uint16(*req.NumberOfBytes)}, hsmcmd.ParseRandomResponse)
	if err != nil {
		return nil, internal(s, "GenerateRandom", err)
	}
	return &generateRandomResponse{Plaintext: r.Bytes}, nil
}
