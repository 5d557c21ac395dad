// Package examples holds the worked subnet specs of docs/subnet-language.md
// (spec version 2) and their end-to-end tests; it has no API of its own.
//
//   - summarize/: a custom synapse summarize.v1 answered in free text,
//     tasks from an exec program (tasks.py), an LLM judge (judge.txt).
//   - translate/: a custom synapse translate.v1, a dataset of sentences
//     with reference translations (pairs.jsonl), a reward by ROUGE-L, edit
//     ratio and word overlap to the reference.
//   - code/: a custom synapse code.v1 answered in JSON ({"code": …}),
//     tasks with unit tests in their meta (problems.jsonl), an exec judge
//     (judge.py) that runs each answer's tests in a throwaway directory
//     under rlimits.
//   - model-lm/: tasks from commitments: miners commit the CIDs of charlm
//     language models, validators measure their loss on corpus.txt (the
//     built-in model subnet's corpus) and pay the best the most; its
//     torch-spec.yaml evaluates tiny PyTorch transformers with an exec
//     evaluator (torch/eval.py), whose test is skipped without PyTorch.
//
// Each directory's README.md says what its subnet pays for and how to run
// it with a real model server. The tests run each example on a localnet
// against a fake OpenAI-compatible model server and check that honest
// miners earn at least ten times a lazy one. The examples' programs need
// python3; their tests skip without it unless CYBERTENSOR_REQUIRE_PYTHON is
// 1 (as in CI, which installs it).
package examples
