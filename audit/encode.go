package audit

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/trentkms/trent/internal/jsonenc"
)

// AppendJSON appends e's line (without the newline) to b: the bytes
// json.Marshal(e) gives, written without reflection. The audit trail's
// format is encoding/json's, so the same events read back the same
// (FuzzAppendJSON compares the two byte for byte). Values of the maps that
// are not what encoding/json decodes JSON into (string, float64, bool,
// nil, map[string]any, []any), an operation's additional event data for
// instance, are marshalled by encoding/json; an error is its error.
func (e *Event) AppendJSON(b []byte) ([]byte, error) {
	if y := e.EventTime.Year(); y < 0 || y > 9999 || e.EventTime.Location() != time.UTC {
		// encoding/json's time encoding refuses what RFC 3339 cannot
		// write and keeps other zones' offsets: leave those to it.
		line, err := json.Marshal((*plainEvent)(e))
		return append(b, line...), err
	}
	var err error
	b = append(b, `{"eventVersion":`...)
	b = jsonenc.AppendString(b, e.EventVersion)
	b = append(b, `,"eventTime":"`...)
	b = e.EventTime.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","eventSource":`...)
	b = jsonenc.AppendString(b, e.EventSource)
	b = append(b, `,"eventName":`...)
	b = jsonenc.AppendString(b, e.EventName)
	b = append(b, `,"awsRegion":`...)
	b = jsonenc.AppendString(b, e.AWSRegion)
	b = append(b, `,"sourceIPAddress":`...)
	b = jsonenc.AppendString(b, e.SourceIPAddress)
	b = append(b, `,"userAgent":`...)
	b = jsonenc.AppendString(b, e.UserAgent)
	if u := e.UserIdentity; u != nil {
		b = append(b, `,"userIdentity":{"type":`...)
		b = jsonenc.AppendString(b, u.Type)
		b = append(b, `,"arn":`...)
		b = jsonenc.AppendString(b, u.ARN)
		b = append(b, `,"accountId":`...)
		b = jsonenc.AppendString(b, u.AccountID)
		b = append(b, `,"accessKeyId":`...)
		b = jsonenc.AppendString(b, u.AccessKeyID)
		b = append(b, '}')
	}
	b = append(b, `,"requestParameters":`...)
	if b, err = appendMap(b, e.RequestParameters); err != nil {
		return b, err
	}
	b = append(b, `,"responseElements":`...)
	if b, err = appendMap(b, e.ResponseElements); err != nil {
		return b, err
	}
	if e.ErrorCode != "" {
		b = append(b, `,"errorCode":`...)
		b = jsonenc.AppendString(b, e.ErrorCode)
	}
	if e.ErrorMessage != "" {
		b = append(b, `,"errorMessage":`...)
		b = jsonenc.AppendString(b, e.ErrorMessage)
	}
	if e.KeyID != "" {
		b = append(b, `,"keyId":`...)
		b = jsonenc.AppendString(b, e.KeyID)
	}
	if len(e.AdditionalEventData) > 0 {
		b = append(b, `,"additionalEventData":`...)
		if b, err = appendMap(b, e.AdditionalEventData); err != nil {
			return b, err
		}
	}
	b = append(b, `,"requestID":`...)
	b = jsonenc.AppendString(b, e.RequestID)
	b = append(b, `,"eventID":`...)
	b = jsonenc.AppendString(b, e.EventID)
	b = append(b, `,"readOnly":`...)
	b = strconv.AppendBool(b, e.ReadOnly)
	b = append(b, `,"eventType":`...)
	b = jsonenc.AppendString(b, e.EventType)
	return append(b, '}'), nil
}

// plainEvent is Event as encoding/json marshals it (Event has no
// MarshalJSON; the conversion documents that AppendJSON does not recurse).
type plainEvent Event

// appendMap appends m as encoding/json does: null for nil, keys sorted.
func appendMap(b []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	var buf [16]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, k)
		b = append(b, ':')
		if b, err = appendValue(b, m[k]); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendValue appends v as encoding/json does.
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return jsonenc.AppendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case float64:
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			return jsonenc.AppendFloat(b, v), nil
		}
	case map[string]any:
		return appendMap(b, v)
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		var err error
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendValue(b, x); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	}
	j, err := json.Marshal(v)
	return append(b, j...), err
}
