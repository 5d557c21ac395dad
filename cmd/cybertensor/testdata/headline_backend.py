# An exec backend for the headline spec (localnet/testdata/headline):
# answers headline.v1 with the text's first four words, as JSON lines.
import json
import sys

for line in sys.stdin:
    msg = json.loads(line)
    words = msg["body"]["text"].split()
    print(json.dumps({"id": msg["id"], "body": " ".join(words[:4])}), flush=True)
