package subnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/cybertensor/cybertensor/knowledge"
)

// MaxLockedFile bounds a file a spec refers to (the knowledge library's
// default object limit).
const MaxLockedFile = 256 << 20

// fileError is a SpecError about a referenced file, at its field's line.
func (s *Spec) fileError(r fileRef, format string, args ...any) error {
	return &SpecError{Line: s.lines[r.field], Field: r.field, Reason: r.path + ": " + fmt.Sprintf(format, args...)}
}

// FileCID is the knowledge CID of a file's bytes: what `knowledge
// publish` gives its body, and what a spec's files: section holds.
func FileCID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", errors.New("not a regular file")
	}
	c, _, err := knowledge.BodyCID(context.Background(), f, MaxLockedFile)
	if err != nil {
		return "", err
	}
	return c.String(), nil
}

// Lock computes the CID of every file s refers to (ReferencedFiles, read
// from dir, the spec's directory) and returns the spec with its files:
// section set: appended to the text, or, when the spec has one, checked
// equal (then s itself is returned). The locked spec's Hash covers the
// files. A spec that refers to no files is returned as it is; so is a v1
// spec. A missing or unreadable file, or a dataset whose cid: is not its
// path's CID, is a *SpecError naming the field.
func Lock(s *Spec, dir string) (*Spec, error) {
	refs := s.fileRefs()
	if len(refs) == 0 {
		return s, nil
	}
	files := map[string]string{}
	for _, r := range refs {
		if _, done := files[r.path]; done {
			continue
		}
		c, err := FileCID(filepath.Join(dir, filepath.FromSlash(r.path)))
		if err != nil {
			return nil, s.fileError(r, "%v", unwrapPath(err))
		}
		files[r.path] = c
	}
	if err := s.checkDatasetCIDs(files); err != nil {
		return nil, err
	}
	if len(s.Files) > 0 {
		if err := s.checkFiles(files); err != nil {
			return nil, err
		}
		return s, nil
	}
	text := bytes.TrimRight(s.text, "\n")
	var b bytes.Buffer
	b.Write(text)
	b.WriteString("\n# The lock: the knowledge CID of every file the spec refers to.\nfiles:\n")
	for _, path := range slices.Sorted(maps.Keys(files)) {
		key, _ := json.Marshal(path) // a JSON string is a YAML double-quoted scalar
		fmt.Fprintf(&b, "  %s: %s\n", key, files[path])
	}
	locked, err := Parse(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("subnet: locking the spec: %w", err)
	}
	return locked, nil
}

// unwrapPath drops the *PathError's path (the message names the file).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (s *Spec) checkDatasetCIDs(files map[string]string) error {
	same := func(path, ref string) bool { return path != "" && filepath.ToSlash(filepath.Clean(path)) == ref }
	for _, r := range s.fileRefs() {
		for _, m := range s.EffectiveMechanisms() {
			var want string
			switch {
			case r.kind == "dataset" && same(m.Tasks.Path, r.path):
				want = m.Tasks.CID
			case r.kind == "evaluation data" && m.Evaluate != nil && same(m.Evaluate.Data.Path, r.path):
				want = m.Evaluate.Data.CID
			}
			if want != "" && want != files[r.path] {
				return s.fileError(r, "its CID is %s, but the spec's cid is %s", files[r.path], want)
			}
		}
	}
	return nil
}

// checkFiles compares the files: section with the files' CIDs.
func (s *Spec) checkFiles(files map[string]string) error {
	for _, r := range s.fileRefs() {
		field := "files." + r.path
		locked, ok := s.Files[r.path]
		switch {
		case !ok:
			return &SpecError{Line: s.lines["files"], Field: field, Reason: "not locked: the spec refers to it but files: does not list it"}
		case locked != files[r.path]:
			return &SpecError{Line: s.lines[field], Field: field, Reason: fmt.Sprintf("the file's CID is %s, not %s: it changed since the spec was locked", files[r.path], locked)}
		}
	}
	return nil
}

// Resolve checks that s can run from dir, its directory: every file it
// refers to exists and matches its files: entry (so the hash on chain
// covers what runs), a dataset's path and cid agree, every dataset line is
// a valid task for its synapse, prompt files are valid templates, and
// every exec program is executable (a bare name is looked up in PATH). A
// failure is a *SpecError naming the field.
func Resolve(s *Spec, dir string) error {
	files := map[string]string{}
	for _, r := range s.fileRefs() {
		full := filepath.Join(dir, filepath.FromSlash(r.path))
		if _, done := files[r.path]; !done {
			c, err := FileCID(full)
			if err != nil {
				return s.fileError(r, "%v", unwrapPath(err))
			}
			files[r.path] = c
		}
		switch r.kind {
		case "program":
			if err := checkExecutable(full); err != nil {
				return s.fileError(r, "%v", err)
			}
		case "dataset":
			if err := checkDataset(full, s.Synapse(r.synapse)); err != nil {
				return s.fileError(r, "%v", err)
			}
		case "prompt":
			b, err := os.ReadFile(full)
			if err != nil {
				return s.fileError(r, "%v", unwrapPath(err))
			}
			if syn := s.Synapse(r.synapse); syn != nil {
				if err := CheckJudgeTemplate(string(b), syn); err != nil {
					return s.fileError(r, "%v", err)
				}
			}
		}
	}
	if err := s.checkDatasetCIDs(files); err != nil {
		return err
	}
	if err := s.checkFiles(files); err != nil {
		return err
	}
	return s.checkPrograms()
}

// checkPrograms checks the exec programs that are not the spec's files:
// absolute paths and names looked up in PATH.
func (s *Spec) checkPrograms() error {
	if s.Version < 2 {
		return nil
	}
	check := func(field string, argv []string) error {
		if len(argv) == 0 {
			return nil
		}
		if _, isFile := commandFile(0, argv[0]); isFile && !filepath.IsAbs(argv[0]) {
			return nil // a file of the spec's, checked above
		}
		if _, err := exec.LookPath(argv[0]); err != nil {
			return &SpecError{Line: s.lines[field], Field: field, Reason: fmt.Sprintf("%s: %v", argv[0], unwrapExec(err))}
		}
		return nil
	}
	for i, m := range s.EffectiveMechanisms() {
		p := ""
		if len(s.Mechanisms) > 0 {
			p = fmt.Sprintf("mechanisms[%d].", i)
		}
		if m.Tasks.Source == FromExec {
			if err := check(p+"tasks.command[0]", m.Tasks.Command); err != nil {
				return err
			}
		}
		if m.Judge != nil && m.Judge.Kind == JudgeExec {
			if err := check(p+"judge.command[0]", m.Judge.Command); err != nil {
				return err
			}
		}
		if e := m.Evaluate; e != nil && m.Tasks.Source == FromCommitments && e.Kind == EvaluateExec {
			if err := check(p+"evaluate.command[0]", e.Command); err != nil {
				return err
			}
		}
	}
	return nil
}

func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return unwrapPath(err)
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return unwrapPath(err)
	}
	if fi.Mode()&0o111 == 0 {
		return errors.New("not executable (chmod +x it, or name its interpreter first)")
	}
	return nil
}

// checkDataset reads a v2 dataset and checks every line is a task for syn.
func checkDataset(path string, syn *Synapse) error {
	f, err := os.Open(path)
	if err != nil {
		return unwrapPath(err)
	}
	defer f.Close()
	lines, err := ParseTaskLines(f, MaxTaskLines)
	if err != nil {
		return err
	}
	if syn == nil {
		return nil
	}
	for i, l := range lines {
		if _, err := syn.TaskFromLine(l); err != nil {
			return fmt.Errorf("task %d: %w", i+1, err)
		}
	}
	return nil
}
