// Package vectors holds Trent's language-neutral known-answer vectors
// (v1/*.json, described in README.md) and, in its tests, the generator
// that writes them and the checks that run them against Trent's own
// parsers and verifiers. go test ./conformance/vectors/ regenerates every
// file in memory, compares it byte for byte with the committed one and
// checks every vector; go test ./conformance/vectors/ -run TestGenerate
// -update rewrites the files (v1 is frozen: see README.md).
package vectors
