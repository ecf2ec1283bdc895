"""Which way a sentence moves a financial metric, and whether that way is good: "operating margin expanded by 320
basis points" is good, "gross margin contracted 400 basis points" bad, "customer concentration rose" bad, "net loss
narrowed" good. A bag-of-words classifier misses these, because the direction word alone ("expanded", "rose") says
nothing until it is paired with its metric, and PhraseBank has too few such pairs for the head to learn the sign of
each. The rule composes two small word lists: the metric's polarity (+1 when more is better: margin, revenue,
cash flow; -1 when more is worse: costs, losses, debt, concentration, churn) times the direction of its change
(+1 rose, expanded, higher; -1 fell, contracted, lower). It fires only when every pair in the sentence agrees and
no negation is near; how much it moves the classifier's probabilities (`DIRECTION_WEIGHT` in finance_sentiment)
was chosen on the PhraseBank dev split."""

from __future__ import annotations

import re

# Metrics, one word each; phrases below. "More is better" ones, then "more is worse" ones.
_BETTER = frozenset((
    "margin margins revenue revenues sales profit profits profitability earnings eps income ebitda ebit orders "
    "bookings backlog volume volumes dividend dividends demand occupancy arpu subscribers customers users traffic "
    "comps productivity liquidity deposits loans shipments deliveries production output pricing").split())
_WORSE = frozenset((
    "cost costs expense expenses opex loss losses debt leverage borrowings concentration churn impairment "
    "impairments write-down write-downs writedown charges charge-offs chargeoffs delinquencies delinquency "
    "provisions unemployment headwinds headwind defaults inventories layoffs deficit dilution attrition").split())
_UP = frozenset((
    "rose rise rises rising risen increase increased increases increasing grew grow grows growing up higher "
    "expanded expand expands expanding expansion improved improve improves improving improvement gained gain gains "
    "climbed climb jumped jump surged surge soared doubled tripled widened strengthened strong stronger record "
    "accelerated accelerating boosted raised raise raising exceeded beat").split())
_DOWN = frozenset((
    "fell fall falls falling fallen declined decline declines declining decreased decrease decreases decreasing "
    "dropped drop drops down lower contracted contract contracts contracting contraction shrank shrink shrinking "
    "narrowed narrow narrowing compressed compression deteriorated deteriorate weakened weaker weak eroded erosion "
    "slipped slumped plunged plummeted tumbled halved reduced reduce reduction cut cuts lowered missed").split())
_NEGATION = frozenset(
    "not no never without nor didn't don't doesn't wasn't weren't isn't aren't hasn't haven't".split())
_TOKEN = re.compile(r"[a-z][a-z'\-]*")
# Phrases win over their words ("net loss" over "loss", "cost of risk" over "cost"): matched longest first.
_BETTER_PHRASES = ("cash flow", "cash flows", "free cash flow", "operating cash flow", "order intake", "market share",
                   "comparable sales", "same-store sales", "return on equity", "net interest margin", "gross margin",
                   "operating margin", "ebitda margin", "operating income", "net income", "operating profit",
                   "net profit", "order book", "sales growth", "capital ratio")
_WORSE_PHRASES = ("net loss", "operating loss", "net debt", "customer concentration", "days sales outstanding",
                  "cost of risk", "nonperforming loans", "non-performing loans", "credit losses", "loan losses")
WINDOW = 6  # tokens after a metric in which its direction word may come ("margin expanded by 320 ...")
LOOKBACK = 3  # tokens before it ("higher raw material costs")


def _metric_table() -> list[tuple[tuple[str, ...], int]]:
    table = {(w,): 1 for w in _BETTER} | {(w,): -1 for w in _WORSE}
    table |= {tuple(p.split()): 1 for p in _BETTER_PHRASES} | {tuple(p.split()): -1 for p in _WORSE_PHRASES}
    return sorted(table.items(), key=lambda kv: -len(kv[0]))


_METRICS = _metric_table()


def direction(sentence: str) -> int:
    """+1 when the sentence says a metric moved the good way, -1 the bad way, 0 when it says neither, says both, or
    negates the move."""
    tokens = _TOKEN.findall(sentence.lower())
    metrics: list[tuple[int, int, int]] = []  # (first token, last token, polarity)
    taken: set[int] = set()
    for phrase, sign in _METRICS:
        n = len(phrase)
        for i in range(len(tokens) - n + 1):
            if tuple(tokens[i:i + n]) == phrase and not taken & set(range(i, i + n)):
                metrics.append((i, i + n - 1, sign))
                taken |= set(range(i, i + n))
    votes: set[int] = set()
    for first, last, sign in metrics:
        lo, hi = max(0, first - LOOKBACK), min(len(tokens), last + 1 + WINDOW)
        window = [j for j in range(lo, hi) if j not in taken]
        moves = {1 if tokens[j] in _UP else -1 for j in window if tokens[j] in _UP or tokens[j] in _DOWN}
        if len(moves) != 1:
            continue
        if any(tokens[j] in _NEGATION for j in range(max(0, first - 3), hi)):
            return 0
        votes.add(sign * moves.pop())
    return votes.pop() if len(votes) == 1 else 0
