#!/usr/bin/env python3
"""Task program of the summarize example subnet.

A validator runs it (spec.yaml, tasks.source: exec) and reads its standard
output: one task line per article, {"request": {"text": ...}, "meta": {...}}.
The tasks carry no "expected" answer: the LLM judge reads the article and the
miner's summary and scores the summary alone.

The articles are bundled below, so the spec's lock (its files: section) covers
them with this program's CID. Standard input is ignored; with an argument N
it prints at most N tasks.
"""
import json
import sys

ARTICLES = [
    ("harbor-ferry",
     "The harbor town of Elsby will run an electric ferry across its bay from next spring. "
     "The council approved the purchase after a two-year trial of a smaller battery boat. "
     "The new ferry carries 120 passengers and charges at the quay in fifteen minutes between crossings. "
     "Officials expect it to replace two diesel boats that burn about 300,000 litres of fuel a year. "
     "Fares will stay the same for the first season."),
    ("library-hours",
     "The city library will stay open until midnight on weekdays during the exam season. "
     "Students asked for longer hours after the reading rooms filled by mid-afternoon last year. "
     "The library will add two security staff and keep the cafe open until ten. "
     "The extended hours start on the first Monday of May and end in late June. "
     "Weekend hours do not change."),
    ("bee-survey",
     "Volunteers counted more wild bees in the valley's meadows this summer than in any year since the survey began. "
     "Two hundred people walked fixed routes each week and logged every bee they saw on an app. "
     "The survey's organisers credit the farmers who left wide flowering strips along their fields. "
     "Bumblebees did especially well, while some solitary species remained rare. "
     "The results will be shared with the regional farming office."),
    ("bridge-repair",
     "The old stone bridge over the Marrow river will close for six weeks of repairs in September. "
     "Engineers found cracks in two arches during a routine inspection in the spring. "
     "Cars will be sent on a detour through the north road, adding about ten minutes to the trip. "
     "Pedestrians and cyclists can use a temporary footbridge next to the works. "
     "The repair is paid for by the county's maintenance fund."),
    ("school-garden",
     "Pupils at Hillside Primary School grew enough vegetables this year to supply the school kitchen for a month. "
     "The garden started three years ago on an unused corner of the playground. "
     "Each class looks after one bed and keeps a diary of what it plants and harvests. "
     "Teachers say the garden has made pupils more willing to try new foods at lunch. "
     "The school now plans to add a small greenhouse."),
    ("night-trains",
     "A new night train will link the capital with the southern coast three times a week from December. "
     "The train leaves at ten in the evening and arrives shortly after seven in the morning. "
     "Passengers can book seats, couchettes or private cabins with a washbasin. "
     "The operator says demand grew after several short domestic flights were cancelled. "
     "Tickets go on sale at the end of October."),
    ("museum-roof",
     "The natural history museum has reopened its main hall after replacing the leaking glass roof. "
     "The hall was closed for eighteen months while workers fitted new panels and a steel frame. "
     "The whale skeleton that hangs from the ceiling was cleaned and rehung during the works. "
     "Visitors can now see the roof's original ironwork, which had been hidden behind boards. "
     "Entry to the hall remains free."),
    ("river-cleanup",
     "More than five hundred volunteers pulled four tonnes of rubbish from the river banks on Saturday. "
     "The clean-up covered twelve kilometres between the old mill and the estuary. "
     "Plastic bottles and bags made up most of the haul, along with three shopping trolleys and a bicycle. "
     "The organisers will send the figures to the council to support a ban on single-use plastic at markets. "
     "The next clean-up is planned for the spring."),
    ("apprentice-scheme",
     "Local builders will train forty apprentices a year under a new scheme backed by the regional college. "
     "Apprentices will spend four days a week on building sites and one day in college classes. "
     "The scheme covers carpentry, plumbing, electrical work and bricklaying. "
     "Firms say they struggle to hire skilled workers as older tradespeople retire. "
     "Applications open in January for courses starting in September."),
    ("observatory",
     "The hilltop observatory will open to the public on clear Friday nights from October. "
     "Visitors will be able to look through the main telescope with help from volunteer astronomers. "
     "The observatory was built in the 1930s and restored last year with money from a local trust. "
     "Sessions are limited to twenty people and must be booked in advance. "
     "If clouds cover the sky, the evening turns into a talk about the night sky instead."),
]


def main():
    limit = len(ARTICLES)
    if len(sys.argv) > 1:
        limit = max(0, int(sys.argv[1]))
    out = sys.stdout
    for ident, text in ARTICLES[:limit]:
        out.write(json.dumps({"request": {"text": text}, "meta": {"id": ident}}) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
