package judge

import (
	"context"
	"encoding/json"
	"testing"
)

// BenchmarkCallerJudge is the judge's own cost per answer (encoding the
// request, decoding the reply, metrics) with a caller that answers at once.
func BenchmarkCallerJudge(b *testing.B) {
	j := NewCaller(replying(`{"score": 0.75, "fields": {"passed": 3, "failed": 1}}`), WithMetrics(NewMetrics(nil)))
	defer j.Close()
	in := Input{Request: json.RawMessage(`{"text": "Cats sleep sixteen hours a day, mostly in short naps."}`), Expected: json.RawMessage(`"cats sleep a lot"`),
		Synapse: "summarize.v1", Answer: []byte("Cats nap for most of the day."), AnswerIsText: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := j.Judge(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseScore(b *testing.B) {
	reply := "The summary keeps the main claim and drops the detail about naps, which is acceptable.\n\nScore: 8/10"
	for b.Loop() {
		if _, ok := ParseScore(reply); !ok {
			b.Fatal("no score")
		}
	}
}
