package hsmcmd

import "context"

// DoFunc sends a command of type typ and returns the HSM's answer:
// session.Client's Do, or a host's wrapper of it (batching, retries).
type DoFunc func(ctx context.Context, typ uint16, command []byte) ([]byte, error)

// Call marshals req, sends it with do and parses the answer with parse:
//
//	resp, err := hsmcmd.Call(ctx, client.Do, hsmcmd.SignRequest{…}, hsmcmd.ParseSignResponse)
//
// do's errors are returned as they are (a refusal still wraps
// session.ErrRefused); an answer that does not parse wraps ErrMalformed.
func Call[Resp any](ctx context.Context, do DoFunc, req Request, parse func([]byte) (*Resp, error)) (*Resp, error) {
	cmd, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	out, err := do(ctx, uint16(req.Code()), cmd)
	if err != nil {
		return nil, err
	}
	return parse(out)
}
