"""Outside check h4, residual of F4: the count distractors of answer-first MCQs put the correct count as the
largest of the four options in only 10.7% of MCQs (uniform: 25%), and "two" was always the smallest, so
"never pick the largest number" and "pick two when it is offered" were shortcuts a model could learn.

Now the answer's place in the sorted options follows a per-sample draw over every place alike: the step
of the run is the roundest that leaves room for that place, and the option that keeps a round answer from
standing out is put on the answer's own side. A count of one is offered where the counted noun has a
regular singular ("one egg"), so two is no longer always the smallest. Deterministic sample keys.
"""
from __future__ import annotations

from collections import Counter

from vdata.stages.generate.answer_first import answer_spans, distractors, singular

SEEDS = 400
# counts whose run has room on both sides: every place of the answer must come up about as often
PLAIN = [*range(5, 10), *range(11, 20), 30, 40, 45, 60, 75, 90, 120, 150, 180, 300, 350, 450, 2024]


def _span(sentence: str):
    return next(s for s in answer_spans(sentence) if s.kind == "number")


def _ranks(sentence: str, value) -> Counter:
    span = _span(sentence)
    ranks = Counter()
    for seed in range(SEEDS):
        values = [value(w) for w in distractors(span, 3, f"sample-{seed}")]
        n = value(span.text)
        assert n not in values and len(set(values)) == 3
        ranks[sorted(values + [n]).index(n)] += 1
    return ranks


def test_the_answer_takes_every_place_among_the_options_about_equally():
    spelled = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
               "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
    cases = [(f"The repair takes {n} minutes.", lambda w: int(w.split()[0])) for n in PLAIN]
    cases += [(f"She bakes {spelled[n]} loaves of bread.", lambda w: spelled.index(w.split()[0].lower()))
              for n in (5, 6, 7, 8, 9, 11)]
    for sentence, value in cases:
        ranks = _ranks(sentence, value)
        shares = [ranks[r] / SEEDS for r in range(4)]
        assert all(0.18 <= s <= 0.32 for s in shares), (sentence, shares)


def test_two_is_not_always_the_smallest_option():
    for sentence in ("She whisks two eggs with a fork.", "Add 2 cups of flour to the bowl."):
        span = _span(sentence)
        options = [distractors(span, 3, f"sample-{seed}") for seed in range(SEEDS)]
        ones = [o for opts in options for o in opts if o.split()[0] in ("one", "1")]
        assert ones and set(ones) <= {"one egg", "1 cup of flour"}, set(ones)
        share = sum(any(o in ones for o in opts) for opts in options) / SEEDS
        assert 0.6 <= share <= 0.9, share   # two above one in the three places out of four that put it higher
    # no singular to be sure of: one is not offered ("one cookies", "one children")
    for sentence in ("He bakes two cookies.", "The two children laugh.", "She fills two glasses."):
        assert not any(o.split()[0] == "one" for seed in range(40) for o in distractors(_span(sentence), 3, f"s{seed}"))
    assert [singular(w) for w in ("eggs", "minutes", "spokes", "cookies", "loaves", "tomatoes", "boxes", "glasses",
                                  "buses")] == ["egg", "minute", "spoke", None, None, None, None, None, None]


def test_a_round_answer_is_never_the_only_round_option_and_keeps_its_places():
    for n in (10, 100, 1000, 200, 300):
        span = _span(f"The repair takes {n} minutes.")
        ranks = set()
        for seed in range(SEEDS):
            values = [int(w.split()[0]) for w in distractors(span, 3, f"sample-{seed}")]
            r = max(m for m in (10, 100, 1000) if n % m == 0)
            assert any(v % r == 0 for v in values), (n, values)
            ranks.add(sorted(values + [n]).index(n))
        # 200 and 300 have 100 / 200 below them: every place; nothing below 10, 100 or 1000 is as round, so
        # these give up the top place
        assert ranks == ({0, 1, 2, 3} if n in (200, 300) else {0, 1, 2}), (n, ranks)
