package examples

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"unicode"

	"github.com/cybertensor/cybertensor/backend/openaitest"
)

// A fakeModel is an OpenAI-compatible model server on 127.0.0.1 that does
// the examples' work well and deterministically: it answers a miner's
// rendered prompt with the honest answer to the task the prompt carries
// (the lead sentence of an article, the reference translation, the
// reference solution as {"code": …}), and the summarize judge's prompt
// with a score in prose ("… Score: 8/10") by the summary's overlap with
// the article.
type fakeModel struct {
	*openaitest.Server
	answers []cannedAnswer
}

// A cannedAnswer is given to a prompt that holds every one of needles.
type cannedAnswer struct {
	needles []string
	answer  string
}

// judgeMarker starts the summarize example's judge prompt (judge.txt),
// chatJudgeMarker the chat example's.
const (
	judgeMarker     = "You grade one-sentence summaries"
	chatJudgeMarker = "You grade a chat assistant's answer"
)

func newFakeModel(t *testing.T, answers []cannedAnswer) *fakeModel {
	t.Helper()
	m := &fakeModel{answers: answers}
	m.Server = openaitest.New(openaitest.Config{Reply: m.reply})
	t.Cleanup(m.Close)
	return m
}

func (m *fakeModel) reply(req openaitest.ChatRequest) string {
	var prompt strings.Builder
	for _, msg := range req.Messages {
		prompt.WriteString(msg.Content)
		prompt.WriteString("\n")
	}
	p := prompt.String()
	if strings.Contains(p, judgeMarker) {
		return judgeSummary(p)
	}
	if strings.Contains(p, chatJudgeMarker) {
		return m.judgeChat(p)
	}
	return m.canned(p)
}

// canned is the answer to prompt p: the most specific canned answer whose
// needles p holds.
func (m *fakeModel) canned(p string) string {
	best, bestLen := "I cannot help with that.", 0
	for _, a := range m.answers {
		n := 0
		for _, needle := range a.needles {
			if !strings.Contains(p, needle) {
				n = -1
				break
			}
			n += len(needle)
		}
		if n > bestLen { // the most specific match
			best, bestLen = a.answer, n
		}
	}
	return best
}

// judgeSummary is the fake LLM judge: the share of the summary's content
// words (four letters or more, not among a few common ones) that occur in
// the article, out of 10, in a sentence of prose; as judge.txt asks, a
// summary off the article's topic (under half its content words found)
// scores 0.
func judgeSummary(prompt string) string {
	article, rest, ok1 := strings.Cut(after(prompt, "ARTICLE:\n"), "\n\nSUMMARY:\n")
	summary, _, ok2 := strings.Cut(rest, "\n\nReply with")
	if !ok1 || !ok2 {
		return "I could not find the article and the summary in your message."
	}
	inArticle := map[string]bool{}
	for _, w := range contentWords(article) {
		inArticle[w] = true
	}
	sum := contentWords(summary)
	found := 0
	for _, w := range sum {
		if inArticle[w] {
			found++
		}
	}
	score := 0
	if len(sum) > 0 && 2*found >= len(sum) {
		score = int(math.Round(10 * float64(found) / float64(len(sum))))
	}
	return fmt.Sprintf("%d of the summary's %d content words come from the article.\nScore: %d/10", found, len(sum), score)
}

// judgeChat is the fake LLM judge of the chat example: the share of the
// honest answer's content words (what the model would answer the
// conversation) that the assistant's answer has, out of 10.
func (m *fakeModel) judgeChat(prompt string) string {
	conversation, rest, ok1 := strings.Cut(after(prompt, "CONVERSATION:\n"), "\n\nANSWER:\n")
	answer, _, ok2 := strings.Cut(rest, "\n\nReply with")
	if !ok1 || !ok2 {
		return "I could not find the conversation and the answer in your message."
	}
	want := contentWords(m.canned(conversation))
	got := map[string]bool{}
	for _, w := range contentWords(answer) {
		got[w] = true
	}
	found := 0
	for _, w := range want {
		if got[w] {
			found++
		}
	}
	score := 0
	if len(want) > 0 {
		score = int(math.Round(10 * float64(found) / float64(len(want))))
	}
	return fmt.Sprintf("The answer has %d of the %d words a correct answer needs.\nScore: %d/10", found, len(want), score)
}

// commonWords are not content words.
var commonWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields("about after also been before from have into more most over some than that their them then there these they this were what when where which will with would your") {
		commonWords[w] = true
	}
}

func contentWords(s string) []string {
	var out []string
	for _, w := range terms(s) {
		if len([]rune(w)) >= 4 && !commonWords[w] {
			out = append(out, w)
		}
	}
	return out
}

func after(s, marker string) string {
	if _, rest, ok := strings.Cut(s, marker); ok {
		return rest
	}
	return ""
}

func terms(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// leadSentence is an article's first sentence: the honest summary.
func leadSentence(article string) string {
	if i := strings.Index(article, ". "); i >= 0 {
		return article[:i+1]
	}
	return article
}

// Honest answers for each example's tasks.

func summarizeAnswers(t *testing.T, tasks []taskLine) []cannedAnswer {
	t.Helper()
	var out []cannedAnswer
	for _, l := range tasks {
		text, _ := l.Request["text"].(string)
		if text == "" {
			t.Fatalf("summarize task without text: %+v", l)
		}
		out = append(out, cannedAnswer{needles: []string{text}, answer: leadSentence(text)})
	}
	return out
}

// chatAnswers answer each conversation's last message with the reference
// in its meta.
func chatAnswers(t *testing.T, tasks []taskLine) []cannedAnswer {
	t.Helper()
	var out []cannedAnswer
	for _, l := range tasks {
		var meta struct {
			Reference string `json:"reference"`
		}
		msgs, _ := l.Request["messages"].([]any)
		if len(msgs) == 0 || json.Unmarshal(l.Meta, &meta) != nil || meta.Reference == "" {
			t.Fatalf("chat task without messages or a reference: %+v", l)
		}
		last, _ := msgs[len(msgs)-1].(map[string]any)
		question, _ := last["content"].(string)
		out = append(out, cannedAnswer{needles: []string{question}, answer: meta.Reference})
	}
	return out
}

func translateAnswers(t *testing.T, tasks []taskLine) []cannedAnswer {
	t.Helper()
	var out []cannedAnswer
	for _, l := range tasks {
		text, _ := l.Request["text"].(string)
		lang, _ := l.Request["target_lang"].(string)
		var ref string
		if err := json.Unmarshal(l.Expected, &ref); err != nil || text == "" || lang == "" {
			t.Fatalf("translate task %+v: %v", l, err)
		}
		out = append(out, cannedAnswer{needles: []string{text, `"` + lang + `"`}, answer: ref})
	}
	return out
}

func codeAnswers(t *testing.T, tasks []taskLine) []cannedAnswer {
	t.Helper()
	sols := solutions(t)
	var out []cannedAnswer
	for _, l := range tasks {
		sig, _ := l.Request["signature"].(string)
		code, ok := sols[sig]
		if !ok {
			t.Fatalf("no reference solution for %q", sig)
		}
		b, err := json.Marshal(map[string]string{"code": code})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cannedAnswer{needles: []string{sig}, answer: string(b)})
	}
	return out
}
