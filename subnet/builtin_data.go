package subnet

import (
	"embed"
)

//go:embed specs/*.txt
var builtinData embed.FS

// BuiltinData is the evaluation dataset a built-in spec's evaluate:
// section names by CID (data.cid), built into the binary: the bytes whose
// knowledge body CID that is. A built-in spec has no directory to name a
// file in, so its validators publish these bytes in their knowledge
// library when they start and read the dataset from there by CID: no
// download. ok is false for a built-in without one.
func BuiltinData(name string) (data []byte, ok bool) {
	b, err := builtinData.ReadFile("specs/" + name + ".txt")
	if err != nil {
		return nil, false
	}
	return b, true
}
