package subnet

import (
	"bytes"
	"context"
	"embed"
	"io/fs"
	"strings"
	"sync"

	"github.com/cybertensor/cybertensor/knowledge"
)

//go:embed specs/*.txt
var builtinData embed.FS

// BuiltinData is the evaluation dataset a built-in spec's evaluate:
// section names by CID (data.cid), built into the binary: the bytes whose
// knowledge body CID that is. A built-in spec has no directory to name a
// file in; its validators read these bytes by that CID without a download
// (BuiltinDataByCID), and localnet's also publish them in their knowledge
// library, so anyone can fetch the dataset by its CID. ok is false for a
// built-in without one.
func BuiltinData(name string) (data []byte, ok bool) {
	b, err := builtinData.ReadFile("specs/" + name + ".txt")
	if err != nil {
		return nil, false
	}
	return b, true
}

var (
	builtinCIDsOnce sync.Once
	builtinCIDs     map[string][]byte // body CID → the built-in data
)

// BuiltinDataByCID is the built-in dataset (BuiltinData) whose knowledge
// body CID is c, if one is.
func BuiltinDataByCID(c string) ([]byte, bool) {
	builtinCIDsOnce.Do(func() {
		builtinCIDs = map[string][]byte{}
		entries, _ := fs.ReadDir(builtinData, "specs")
		for _, e := range entries {
			data, ok := BuiltinData(strings.TrimSuffix(e.Name(), ".txt"))
			if !ok {
				continue
			}
			id, _, err := knowledge.BodyCID(context.Background(), bytes.NewReader(data), MaxLockedFile)
			if err == nil {
				builtinCIDs[id.String()] = data
			}
		}
	})
	data, ok := builtinCIDs[c]
	return data, ok
}
