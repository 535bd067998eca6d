package kms

import (
	"context"
	"encoding/binary"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/internal/mutation"
	"github.com/trentkms/trent/kms/kmsapi"
)

// generateRandom returns NumberOfBytes (1 to 1024) from an HSM's token RNG.
type generateRandomRequest struct {
	NumberOfBytes    *int       `json:"NumberOfBytes"`
	CustomKeyStoreId *string    `json:"CustomKeyStoreId"`
	Recipient        *recipient `json:"Recipient"`
}

func (s *Service) generateRandom(ctx context.Context, _ kmsapi.Principal, req *generateRandomRequest) (*generateRandomResponse, error) {
	if mutation.On("kms.random-zero-length-accepted") && req.NumberOfBytes != nil && *req.NumberOfBytes == 0 {
		return &generateRandomResponse{Plaintext: []byte{}}, nil
	}
	if req.NumberOfBytes == nil || *req.NumberOfBytes < 1 || *req.NumberOfBytes > hsmcmd.MaxRandom {
		v := 0
		if req.NumberOfBytes != nil {
			v = *req.NumberOfBytes
		}
		return nil, kmsapi.Errorf(kmsapi.ValidationException,
			"1 validation error detected: Value '%d' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024", v)
	}
	if req.CustomKeyStoreId != nil {
		return nil, kmsapi.Errorf("CustomKeyStoreNotFoundException", "custom key stores are not supported")
	}
	if s.hsm == nil {
		return nil, kmsapi.Errorf(kmsapi.DependencyTimeout, "no HSM is configured")
	}
	if req.Recipient != nil {
		// GenerateRandom has no key, so no policy: the document alone.
		doc, _, err := s.checkRecipient(ctx, "GenerateRandom", true, req.Recipient)
		if err != nil {
			return nil, err
		}
		cms, _, err := s.viaRecipient(ctx, "GenerateRandom", doc, uint16(hsmcmd.Random), binary.BigEndian.AppendUint16(nil, uint16(*req.NumberOfBytes)), nil)
		if err != nil {
			return nil, err
		}
		res := &generateRandomResponse{CiphertextForRecipient: cms}
		if mutation.On("kms.recipient-random-returns-plaintext") {
			res.Plaintext, _ = s.hsmDo(ctx, uint16(hsmcmd.Random), binary.BigEndian.AppendUint16(nil, uint16(*req.NumberOfBytes)))
		}
		return res, nil
	}
	b, err := s.hsmDo(ctx, uint16(hsmcmd.Random), binary.BigEndian.AppendUint16(nil, uint16(*req.NumberOfBytes)))
	if err != nil {
		s.log.Info("GenerateRandom", "err", err)
		return nil, &kmsapi.Error{Type: kmsapi.KMSInternal, Message: "the HSMs did not answer", Status: 500}
	}
	if mutation.On("kms.random-zeros") {
		clear(b)
	}
	return &generateRandomResponse{Plaintext: b}, nil
}
