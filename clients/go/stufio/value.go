package stufio

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/types/known/structpb"
)

// toValue converts JSON-like Go data to a google.protobuf.Value. structpb only knows map[string]any,
// []any and scalars; anything else (structs, typed maps and slices) goes through encoding/json, so
// json tags apply as everywhere else.
func toValue(v any) (*structpb.Value, error) {
	if value, err := structpb.NewValue(v); err == nil {
		return value, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%T cannot be sent as JSON: %w", v, err)
	}
	var plain any
	if err := json.Unmarshal(raw, &plain); err != nil {
		return nil, err
	}
	return structpb.NewValue(plain)
}
