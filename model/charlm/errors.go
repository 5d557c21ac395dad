package charlm

import "errors"

var (
	// ErrBadArtifact is returned by Decode for bytes that are not a valid
	// artifact.
	ErrBadArtifact = errors.New("charlm: bad model artifact")
	// ErrTooLarge is returned by Decode for an artifact over its Limits.
	ErrTooLarge = errors.New("charlm: model artifact over the limit")
	// ErrBadConfig is returned by Train for an invalid TrainConfig.
	ErrBadConfig = errors.New("charlm: bad train config")
	// ErrNoData is returned by Train for empty training data and by Loss
	// for empty evaluation text.
	ErrNoData = errors.New("charlm: no text")
)
