"""`local/extractive`, offline answering without a generative model: pick the sentences of the retrieved
passages that best cover the question and quote them verbatim with their citation markers. Quoting verbatim means every
number in the answer is in its cited passage by construction.

A sentence's coverage is the IDF-weighted share of the question's focus terms it contains (IDF taken over
the candidate sentences, so a name found everywhere, like the company's, weighs little and a term found
nowhere, like "dividend" over an earnings note, weighs most). Finance synonyms count as the same term."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from rag.chunking import split_sentences
from rag.prompt_tags import parse_history, parse_passages_with_attributes, parse_tag, prompt_text
from rag.providers.registry import LocalCall, RegisteredModel
from rag.text import (
    MEASURED_AGAINST,
    MONTHS,
    OUTLOOK_WORDS,
    PERIOD,
    STOPWORDS,
    is_list_question,
    period_labels,
    spelled_numbers_to_digits,
    tokenize,
)

NOT_FOUND = "NOT_FOUND"

# Words that say what kind of answer is wanted, not what it is about.
_FILLER = frozenset(tokenize(
    """company firm co inc corp ltd plc report reported say said tell according document documents note mention
    mentioned give number figure amount value level see saw seen get got make made take took come came happen
    happened look go went add added exactly please now currently latest recent recently anything something
    provide show know large big size stock quarter year period last main biggest primary most discuss discussed
    talk talked call calls comment commented describe described compare comparison versus both each fiscal
    hold change changed cite cited highlight highlighted flag flagged identify identified more notable
    noteworthy because post posted achieve achieved contrast already almost explanation including against tracking
    ran after gave within affect affected affects affecting
    isn't aren't wasn't weren't doesn't don't didn't hasn't haven't""",
    drop_stopwords=False,
))

_SYNONYM_GROUPS = [
    "revenue revenues sales sale sell selling topline turnover",
    "guidance guide guided outlook forecast forecasts expect expects expected",
    "buyback buybacks repurchase repurchases repurchased",
    "customer customers client clients carrier carriers",
    "deploy deploying deployed deployment deployments rollout rolling implement implementing implemented "
    "implementer adopt adopting adoption adopter adopters use using expanding",
    "grow growth rise risen increase increased gain gains up higher uplift lift",
    "decline declined fall decrease decreased drop dropped down lower compress compressed compression slip "
    "slipped erode eroded erosion soften softened weaken weakened",
    "profit profits earnings income",
    "expense expenses spend spending",
    "margin margins",
    "receivable receivables",
    "launch launches launched",
    "deliver delivers delivered delivering delivery deliveries",
    "covid coronavirus",
    "ad ads advertising",
    "booking bookings reservation reservations",
]
_GROUP_OF: dict[str, str] = {}
for _group in _SYNONYM_GROUPS:
    _members = tokenize(_group, drop_stopwords=False)
    for _member in _members:
        _GROUP_OF.setdefault(_member, _members[0])


def _folded(words: str, drop_stopwords: bool = True) -> frozenset[str]:
    """The terms of `words` as the answerer compares them: stemmed, then folded to their synonym group's first."""
    return frozenset(_GROUP_OF.get(t, t) for t in tokenize(words, drop_stopwords=drop_stopwords))


_AMOUNTS = _folded("revenue profit ebitda ebit cash capex debt eps rpo gmv")
_CHANGES = _folded("growth decline change")
_REVENUE = _folded("revenue")
_CAPEX = _folded("capex")
_SPENDING = re.compile(r"\bspend(?:s|ing)?\b", re.I)
_EXPENSES = re.compile(r"\bexpenses?\b|\bopex\b", re.I)
_SPEND = _folded("spend")
_COMPS = frozenset(tokenize("comps"))  # "same-store" is two terms, "same" and "store"
# A figure that is a rate or a change: "26%", "4.5 percent", "80 basis points", "3.5 points", "2.1 times".
_RATE = re.compile(r"\d(?:[\d.,]*\d)?\s?(%|percent(?:age points?)?\b|per cent\b|(?:basis )?points?\b|bps\b|pts\b|"
                   r"times\b|x\b)?", re.I)
# An amount of money: a currency, a scale or a unit price ("$4.2", "536.5 million", "66 cents", "1.12 per share").
_AMOUNT_STATED = re.compile(r"[$€£¥]\s?\d|\b(?:million|billion|trillion)\b|"
                            r"\d\s*(?:thousand|mn|bn|cents?|pence|pesewas|per share)\b", re.I)
# "How did GE's orders change in the first quarter?" asks by how much.
_HOW_CHANGED = re.compile(r"\s*how (?:did|does|do|has|have|will)\b[^?]*(?<!\bthe)(?<!\ba)(?<!\bin)(?<!\bof)(?<!\bto)"
                          r"\s(?:change|grow|increase|decrease|decline|rise|fall|drop|move|develop|evolve)\b", re.I)
# "How many orders did Hepsiburada process?": a verb that only tallies what went through the business; "Total number
# of orders in the second quarter were 13.1 million" answers it without saying "process". Any other verb says what was
# done to some of them ("How many stores did they close / remodel?", "How many employees did they furlough?"), which
# the total number does not answer.
_HOW_MANY_DID = re.compile(r"^\s*how many ((?:[\w-]+\s+){0,2}?[\w-]+)\s+(?:did|does|do|will|has|have|had)\b(.*)$",
                           re.I | re.S)
_TALLIES = frozenset(tokenize("handle process serve ship deliver fulfil fulfill complete record register transact "
                              "operate run manage see count"))
_NUMBER_OF = re.compile(r"\b(?:number|total) of ((?:[\w-]+\s+){0,2}[\w-]+)", re.I)
_QUANTITY = re.compile(r"\bhow (much|many|large|big|high|fast)\b|\b(amount|size|percentage|share of)\b", re.I)
# "revenue and sequential growth", not "revenue and EBITDA growth" (two changes) nor "revenue growth and margin".
_AMOUNT_WORD = r"(?:revenues?|sales|ebitda|ebit|income|profits?|earnings|eps|margins?|cash)"
_AMOUNT_AND_CHANGE = re.compile(rf"\b{_AMOUNT_WORD}\s+and\s+(?:(?!{_AMOUNT_WORD}\b)[\w-]+\s+){{0,2}}?"
                                r"(?:grow\w*|declin\w*|increas\w*|decreas\w*|chang\w*)\b(?!\s+(?:in|of)\b)", re.I)
_COUNT = re.compile(r"\bcount\b(?! on\b)", re.I)  # "order count": how many orders (not "count on a recovery")
_COUNTED = _folded("count")
_METRICS = _folded("revenue rpo margin arpu eps buyback guidance ebitda ebit income profit cash dividend capex debt "
                   "nim gmv")
# Comparable (same-store) sales are not among them: they are a like-for-like part of sales.
_TOTAL = _folded("total overall consolidated")
_WHOLE = _folded("total net group consolidated overall reported gaap adjusted quarterly annual full year record "
                 "organic core strong solid thousand million billion trillion dollars euros operations continuing",
                 drop_stopwords=False) | _METRICS
# A question about one of these is only answered by a sentence that names it: a paraphrase will not do,
# and "Calix's GAAP EPS" must not be answered with its revenue.
_REQUIRED = _METRICS | _folded("dividend ebitda debt cash ceo cfo chairman employee headcount valuation capex")
_ROLES = frozenset(tokenize("ceo cfo coo chairman president management executive chief officer"))
# A follow-up's pronoun standing for the earlier question's topic (not "their"/"its", which stand for the company).
# A pronoun, not a determiner: "is that?", "of it," but not "in that quarter".
_POINTS_BACK = re.compile(r"\b(?:that|this|those|these|it)\b(?=\s*(?:[?.!,;]|$))", re.I)
_QUALITATIVE = re.compile(r"\b(?:strateg|approach|view|characteri[sz]|describ|think|thought|priorit|philosoph|"
                          r"attitude|stance|tone)\w*", re.I)
_POINTS_TO = re.compile(r"\b(?:that|this|those|these|the same)\s+[a-z]", re.I)  # "that growth rate"
_WHAT_ABOUT = re.compile(r"^\W*(?:and\s+)?(?:what|how)\s+about\b", re.I)
# A capitalised word after the first, or a possessive in capitals ("ADTRAN's"): a company, a person or a place
# (acronyms such as GAAP or EPS name no one).
_NAMED = re.compile(r"(?<=\s)[A-Z][a-z]|\b[A-Z]{2,}['’]s?(?!\w)")
_COMPARATIVE = re.compile(r"(?<![\w-])(?:higher|lower|more|less|bigger|smaller|larger|greater|steeper|sharper|better|"
                          r"worse|stronger|weaker|faster|slower|quicker|richer)(?![\w-])", re.I)
_OWN_QUESTION = re.compile(r"\b(?:what|how|why|which|who|whom|whose|when|where|did|does|do|is|are|was|were|has|have|"
                           r"had|can|could|will|would|should|compare|list|name|tell|give|describe|show)\b", re.I)
_ANAPHORA = frozenset("that this it its those these they them their there same".split())

MIN_COVERAGE = 0.5
MIN_COVERAGE_WITH_MEANING = 0.3
MIN_COSINE = 0.5
# The weight of a question's word that a sentence answering it may well not say: "sales" implied by "grow", the
# "position" of a cash position.
LIGHT = 0.5
MAX_LIST_ITEMS = 8
SAID_ALSO_SHARE = 0.9  # "What did X say about...": a second sentence that scores this share of the best is said too
LIST_SHARE_OF_BEST = 0.6
LIST_ITEM_MIN_TERMS = 2
MIN_SENTENCE_CHARS = 25
MIN_SENTENCE_WORDS = 7  # shorter lines are headings or labels
# ...unless a short line states a figure and ends like a sentence: "Adjusted EBITDA margin was 29.7%."
_SHORT_STATEMENT = re.compile(r"^(?=.*\d)(?:\S+\s+){3,}\S*[.!]$")
# "Net income" is answered by "net income was", not by "net interest income": words of the question that stand
# together should stand together in the answer.
PHRASING_WEIGHT = 0.2
# Retrieval's order is evidence too: of two sentences that cover the question alike, the one from the better-ranked
# passage answers more often (ten passages are read, and the last few are mostly near misses). Earnings dev: fact
# accuracy 0.794 at 0, 0.809 at 0.05 and 0.07, 0.794 at 0.03; citation precision 0.852 -> 0.864.
RANK_WEIGHT = 0.05


# Transcript lines that carry no answer: the operator's script, safe-harbour boilerplate, hand-overs.
_BOILERPLATE = re.compile(
    r"ladies and gentlemen|welcome to (the|our|today)|thank you for standing by|please go ahead|next question|"
    r"(this|the) (conference|call) (is being|will be) recorded|listen[- ]only|question[- ]and[- ]answer session|"
    r"forward[- ]looking statements|safe harbor|turn (the call|it) (back )?over|concludes (today|our|the)|"
    r"(thank you|thanks)( all)? for (joining|your time|your question|participating)|good (morning|afternoon|evening)|"
    r"risks and uncertainties|actual results (may|could|might) differ|reconciliations? (of|to|between)|"
    r"these statements (include|are based|reflect|involve)|"
    r"\bwelcome (?:everyone |all |you )?to\b[^.]{0,80}\b(?:call|conference|webcast)\b",
    re.I)
# Housekeeping that states nothing itself: "Please turn to slide eleven for an overview of loan performance.", "By now,
# everyone should have access to our earnings press release and the presentations for today's call."
_HOUSEKEEPING = re.compile(r"^\W*(?:on\s+)?slides?\s+\w+\s*[,:.-]|"
                           r"^\W*(?:please\s+|let'?s\s+|now,?\s+|so,?\s+)?(?:turn|move|go|flip|refer|look)\s+"
                           r"(?:now\s+)?(?:on\s+)?(?:to|at)\s+(?:slide|page)\b|"
                           r"\bpress release\b|\bshould have access\b", re.I)
# An analyst's question that does not end in "?" ("I'm just wondering if ... could actually build more…").
_ASKING = re.compile(r"^\W*(i'?m|i am|i was|we were|just) (just )?(wondering|curious)|^\W*(could|can|would) you\b",
                     re.I)
# A figure on another basis than the reported one.
_ON_A_BASIS = re.compile(r"\b(?:organic(?:ally)?|like[- ]for[- ]like|constant[- ]currency|pro[- ]?forma|"
                         r"currency[- ]neutral|fx[- ]adjusted|non-?\s*gaap)\b", re.I)
_ADJUSTED = re.compile(r"\b(?:adjusted|non-?\s*gaap|excluding|core)\b", re.I)
_NAMED_UNIT = re.compile(r"\b([A-Za-z][\w&'’-]*)\s+(segments?|divisions?)\b", re.I)
_HEDGES = re.compile(r"\b(uh|um|you know|i mean)\b", re.I)
_NOT_NAMES = frozenset(tokenize(" ".join(MONTHS) + " covid coronavirus", drop_stopwords=False))
# "Plan to", "targeting": the question wants an outlook (the outlook check rewards it), and these verbs are not its
# topic. Only as verbs: "projects", "pension plan", "price target" stay topic words.
_PLANS_TO = r"(?:plan(?:s|ned|ning)?|aim(?:s|ed|ing)?|intend(?:s|ed|ing)?) to"
_INTENT = re.compile(rf"\b{_PLANS_TO}\b|\btarget(?:ing|ed)\b", re.I)
_POSITION_OF = re.compile(r"\b(?:cash|liquidity|capital|balance\s+sheet)\s+positions?\b", re.I)
# A sentence that commits to a figure guides as much as one that "expects" it: it counts as saying "guidance".
# So does one saying what a figure will be ("will come out between 2.15 and 2.45 billion euros").
_WILL_BE = (r"(?:will|should)\s+(?:likely\s+|probably\s+)?(?:be|come\s+(?:in|out)|land|range|reach|total|amount\s+to|"
            r"exceed)\s+(?:[a-z]+\s+){0,3}?(?:(?:between|in\s+the\s+range\s+of|around|approximately|about|roughly|"
            r"at\s+least)\s+[$€£]?\d|[$€£]\d|\d[\d.,]*\s?(?:%|percent|million|billion|thousand|cents|times|basis))")
_COMMITS = re.compile(
    rf"\b(?:on track to|committed to (?:[\w,]+ ){{0,4}}?(?:deliver|achiev|reach|hit)\w*|{_PLANS_TO}|{_WILL_BE})",
    re.I)
_GUIDANCE = _folded("guidance")
# What a figure belongs to: the metrics (guidance is of any of them), and costs ("expenses declined by 42 million").
_OWNERS = _METRICS - _GUIDANCE
_COSTS = _folded("expense cost")  # "opex" is written out as operating expenses by tokenize
_DIVIDENDS = _folded("dividend")
_SPEAKER = re.compile(r"^\s*Speaker \d+:\s*")
# "Non-operating cash taxes" are no operating cash taxes, nor is "non-GAAP" EPS the GAAP one.
_NEGATION = frozenset("no not never without nor none non".split())
# A sentence saying what is to come, not what guidance was: "we are forecasting total revenues to be..." (but not "we
# increased our revenue guidance for the quarter").
_FORECASTS = re.compile(r"\b(?:expect(?:s|ing)?|forecast(?:s|ing)?|anticipat(?:e|es|ing)|project(?:s|ing)|guiding|"
                        r"going to)\b", re.I)
# Phrases whose words are no topic: "in line with what it expected", "in terms of margins", "its own employees",
# "relative to guidance".
_IDIOM = re.compile(r"\bin (?:line with|terms of)\b|\b(?:its|their|our) own\b|\brelative to\b|(?<=\bcash )on hand\b|"
                    # "the year before, in 2019": a period the question also names
                    r"\b(?:the|a) (?:year|quarter) before\b(?=,? in (?:fiscal |fy ?)?(?:19|20)\d\d\b)", re.I)
# "Which companies", "Which Latin American banks", "Which US utilities" (names before the category describe it too).
# Only a subject: in "Which COVID costs does Acme expect to roll off?" the costs are what is asked about.
_LIST_HEAD = re.compile(r"^\s*(?:[Ww]hich\s+((?:[A-Z][\w-]*\s+){0,2}?\w+s)\b(?!\s+(?:did|does|do|will|would|can|could|"
                        r"should|is|are|was|were|has|have|had)\b)|(?i:which|what)\s+(\w+))")
# "Which biotech had more cash, Aldeyra or Affimed?": the category of the companies compared.
_WHICH_KIND = re.compile(r"^\s*which\s+(\w+)\s+(?=(?:had|has|have|was|were|is|are|did|does|do|posted|reported|saw|ran|"
                         r"delivered|earned|made|generated|grew)\b)", re.I)
# "Where did group NIM land?", "Where did the backlog end Q4?", "Did revenue land within guidance?": where a figure came
# to rest is the figure.
_CAME_TO = re.compile(r"^(\s*where\s+(?:did|does|do|will|is|are|was|were)\b.*?)\b(?:land(?:ed)?|end(?:ed)?(?:\s+up)?|"
                      r"finish(?:ed)?|come\s+in|came\s+in)\b|"
                      r"^(.*?)\b(?:land(?:ed)?|c[oa]me\s+in)\b"
                      r"(?=\s+(?:within|inside|above|below|ahead|short|at|in line))", re.I)
_CONTEXT = re.compile(r"\s*\(context: (.*)\)\s*$", re.S)
# "What did Embraer say was notable about its net result?" asks for a statement, not for a figure of the metric.
_SAID = re.compile(r"\s*what did\b[^?]*?\bsay\s+(?:was|were|is|are)\s+(?:[a-z]+\s+){1,2}about\b", re.I)
_ABOUT = re.compile(r"\b(?:say|said|says|comment(?:ed)?|discuss(?:ed)?|talk(?:ed)?|note[sd]?|"
                    r"(?:tell|told|update[ds]?)\s+(?:investors|analysts|shareholders|the market|us)) about (.+)$", re.I)
# An analyst asking in the middle of a sentence, stammer included ("If I look back at Halloween, I'm cu, curious if
# you split the season apart"), or asking for colour ("if you can give a little color on that").
_ASKING_INSIDE = re.compile(r"\b(?:i['’]?m|i am|we['’]?re|we are)\b[\w ,]{0,20}\b(?:curious|wondering)\b|"
                            r"\bif you (?:can|could) (?:give|provide|talk|share|comment|walk|help)\b|"
                            r"\bany colou?r on\b|"
                            # "And then I wanted, um, to ask about...", "my follow-up question is on..."
                            r"\bi\b[\w ,]{0,25}\b(?:wanted|want|would like|['’]d like|had)\W+(?:(?:uh|um)\W+)*to ask\b|"
                            r"\bmy (?:[\w-]+ ){0,2}questions?\b|"  # "my question", "my last related question"
                            r"\bquestions? for me\b|"  # "last question for me is..."
                            r"\bif (?:i|we) (?:could|can|may|might) (?:just |quickly )?"
                            r"(?:ask|follow up|squeeze|sneak)\b|"
                            r"\bcan (?:we|i) assume\b|"
                            # An analyst restating management: "you indicated in your prepared remarks that..."
                            r"\byou (?:indicated|mentioned|said|noted|talked about|alluded to|commented)\b[\w ,]{0,30}"
                            r"\bin your (?:prepared |opening )?(?:remarks|comments)\b", re.I)
# "The quarter ended December 31st, 2021", "at the end of June", "at June 30, 2020" date the question: "end", the
# month and the day are not its topic (the year stays, as a period). A month asked about on its own ("traffic in
# April") is a topic.
_ENDED = re.compile(rf"\b(?:end(?:ed|ing)?\s+(?:of\s+)?|(?:at|as of|on)\s+)(?:{'|'.join(MONTHS)}|jan|feb|mar|apr|jun|"
                    r"jul|aug|sept?|oct|nov|dec)\b\.?(?:\s+\d{1,2}(?:st|nd|rd|th)?\b)?", re.I)
# "At the end of Q3", "by the end of the year": the period stays, "end" is no topic ("end markets" is).
_END_OF = re.compile(r"\bend of (?=(?:(?:the|this|last|next|fiscal|calendar)\s+){0,3}(?:q[1-4]|h[12]|fy\d*|quarter|"
                     r"year|half|period|month|first|second|third|fourth|\d{4})\b)", re.I)
# "Next quarter", "the coming year": a period ahead, so the question asks for an outlook, and a sentence that looks
# ahead says "next" in its own words ("For the fourth quarter, we expect revenue of $4.22 to $4.58 billion"), unless
# it is about this period ("Capex guidance for this year was $35 million").
_NEXT_PERIOD = re.compile(r"\b(?:next|coming|upcoming)\s+(?=(?:fiscal\s+|calendar\s+)?"
                          r"(?:quarter|year|half|twelve months|12 months)\b)", re.I)
_THIS_PERIOD = re.compile(r"\b(?:this|current)\s+(?:fiscal\s+|calendar\s+)?(?:quarter|year|half)\b", re.I)
_NEXT = _folded("next")
# A sentence on the trailing twelve months reports that span, not a quarter ("crossed $1 billion in net sales for the
# trailing 12 months" does not answer a question about Q3 sales, even in a Q3 call).
_TRAILING = re.compile(r"\b(?:trailing|last|past)\s+(?:twelve|12)[\s-]+months?\b|\b(?:ttm|ltm)\b", re.I)
# Questions asking for a reason, sentences that give one, and a speaker restating what analysts ask.
_EXPLAIN_ASKED = re.compile(r"\bwhy\b|\bwhat (?:drove|drives|caused|causes|explains|explained|led to|prompted|pushed|"
                            r"pulled|weighed on|hurt|helped|boosted|lifted|dragged)\b|"
                            r"^\W*(?:and\s+)?(?:the\s+|their\s+)?(?:main\s+|key\s+|primary\s+|biggest\s+)?"
                            r"(?:drivers?|reasons?|causes?)\W*$|"
                            r"\bwhat (?:is|was|are|were) (?:driving|behind|causing)\b|"
                            r"\b(?:reasons?|drivers?|causes?) (?:for|of|behind)\b|"
                            r"\b(?:main|key|primary|biggest) (?:reasons?|drivers?|causes?)\b", re.I)
_EXPLAINS = re.compile(r"\b(?:because|due to|driven by|as a result of|result(?:ing|ed)? from|owing to|thanks to|"
                       r"reflect(?:s|ed|ing)?|attributable to|caused by|led by|"
                       r"offset by|(?:primarily|mainly|largely|mostly|partly|partially) (?:by|from|on))\b", re.I)
_ANNOUNCES = re.compile(r"\b(?:two|three|four|several|a few|a couple of|a number of|the main|the key)\s+(?:\w+\s+)?"
                        r"(?:reasons?|factors?|drivers?|things)\b", re.I)
_ASKED_ABOUT = re.compile(r"\b(?:we(?:'ve| have)? been asked|(?:we|i) (?:often |frequently )?(?:get|got) asked|"
                          r"(?:a|the) question (?:we|i) (?:often |frequently )?(?:get|hear))\b", re.I)
# A speaker opening a topic, and saying nothing else in the sentence ("I'd like to provide an update to the Tribeca
# House litigation.", "Turning to our balance sheet."): what they say of it comes next.
_INTRODUCES = re.compile(r"^\W*(?:(?:now|so|next|and),?\s+)?(?:(?:(?:I|we)['’]d like to|(?:I|we) would like to|let me|"
                         r"I['’]ll|I will|I want to)\s+(?:now\s+)?(?:(?:provide|give)\s+(?:you\s+)?(?:an?|some)\s+"
                         r"(?:\w+\s+)?(?:update|overview)|(?:turn|move)\s+(?:now\s+)?(?:on\s+)?to|talk\s+(?:now\s+)?about)"
                         r"|(?:turning|moving on)\s+(?:now\s+)?to|moving\s+onto)\b[^,;:$%]*[.!]?\s*$", re.I)
# "And what about gross margin?", "So how much...": the conjunction joins the question to the conversation; the
# question's own form (what, how, compare) comes after it.
_LEADING_CONJUNCTION = re.compile(r"^\s*(?:and|so|also|ok(?:ay)?)\b[\s,]*", re.I)
# How a chat opens a request, not what it asks: "Quick one: GCP's gross margin in Q2?", "Remind me of the price...",
# "Tell me about Clipper Realty's buybacks", "I'd like PointsBet's U.S. handle".
_OPENER = re.compile(r"^\s*(?:quick (?:one|question)\s*[:,-]?|(?:(?:can|could) you\s+)?(?:remind|tell|give) me"
                     r"(?:\s+(?:of|about))?\b|i'?d like(?: to (?:know|see|hear))?(?:\s+about)?\b|"
                     r"i (?:want|need)(?: to know)?\b|please\b)[\s,:]*", re.I)
# "The December 2021 quarter": a month that dates a quarter or a year is a period, not a topic ("traffic in April
# 2021" asks about April).
_MONTH_OF_PERIOD = re.compile(rf"\b(?:{'|'.join(MONTHS)})\b(?=\s+(?:\d{{4}}\s+)?(?:quarter|half|year)\b)", re.I)
# "Fiscal 2020 sales, after its third-quarter update": the update's quarter says when, not what period is asked
# about (when the question names one besides; "in its Q3 report" alone asks about Q3, and "its fiscal 2021 report"
# about 2021 when the question names no other year). "Given" or "provided" there is no topic word either.
_SAID_WHEN = re.compile(r"(?:\b(?:given|provided|stated|issued) )?"
                        r"\b(?:after|following|since|in|at|on|during|with|as of) (?:its|their|the|this|that) "
                        r"(?:[\w-]+ ){0,3}(?:update|call|report|announcement|release)\b", re.I)
# A name's description between commas: "FPL, NextEra Energy's Florida utility," or "Culp, the fabrics maker,".
_DESCRIBED = re.compile(r"\b[A-Z][\w&.-]*,\s+((?:[A-Z][\w&.-]*\s+)*[A-Z][\w&.-]*['’]s\s+[^,?]{1,40}|"
                        r"(?:the|a|an|its|their)\s+[^,?]{1,40}),")
# What a figure is compared with is not the period the sentence reports on: everything after "versus" or "compared
# to", and the rest of a clause after "over", "than", "from"... ("up 6% over the third quarter of 2019").
_COMPARED = re.compile(r"\b(?:versus|vs\.?|compared (?:to|with)|as compared)\b", re.I)
# A sentence that only gives the comparison base ("This compared to gross profit of 40.1 million in the prior year
# quarter, representing a gross margin of 38.8%") states no figure of the period asked about.
# ("Compared to last year, revenue grew 5%" does state one.)
_BASE_ONLY = re.compile(r"^\W*(?:this|that|which)\s+(?:compares|compared|is compared|was compared)\s+(?:to|with)\b",
                        re.I)
_BASE = re.compile(r"\b(?:over|than|from|against|since)\b", re.I)
_CLAUSE = re.compile(r"[,;:](?=\s)")
_CLAUSE_BREAK = "clausebreakmark"  # a token no text holds, and that folding leaves as it is
# "What share of sales": a sentence stating "51% of net sales" gives a share, whatever word it uses.
_SHARE_WORDS = "share percentage proportion portion percent"
_SHARE_ASKED = re.compile(rf"\b(?:{'|'.join(_SHARE_WORDS.split())}|how much) of\b", re.I)
# A share stated, "23% of cement dispatches", and of what.
_SHARE_OF = re.compile(r"\d\s?(?:%|percent)\s+of\s+((?:[\w&'-]+\s+){0,3}[\w&'-]+)", re.I)
# "What EPS range did they guide?" is answered by two figures of one kind: "between RMB 332.4 million and RMB 362.4
# million", "$3.60 to $3.70", "6% to 8%", "485 to 495 million"; not "grew 12% to $1.05" (a change, then where it
# ended) nor "from 2020 to 2021" (_states_range).
_RANGE_STATED = re.compile(r"(?:\bbetween\s+)?(?:[A-Z]{3}\s?|[$€£])?(?P<lown>\d[\d.,]*)\s*"
                           r"(?P<lowunit>%|percent|million|billion|thousand|cents?)?\s*(?P<sep>to|and|-|–)\s*"
                           r"(?:[A-Z]{3}\s?|[$€£])?(?P<highn>\d[\d.,]*)\s*(?P<highunit>%|percent)?")
_RANGE = frozenset(tokenize("range ranges"))
_SHARE_TERMS = frozenset(tokenize(_SHARE_WORDS, drop_stopwords=False))
# A margin is a share of sales: "adjusted EBITDA ... or 27.2% of net sales" states the adjusted EBITDA margin, a
# profit's share, and so does "gross profit as a percentage of net sales ... 33%"; "operating expenses were 18% of
# revenue" states none.
_MARGIN_STATED = re.compile(r"(?:\d\s?(?:%|percent)|\bas a (?:percent(?:age)?|share)) of (?:net |total )?"
                            r"(?:sales|revenues?)\b", re.I)
_MARGIN = _folded("margin")
_EARNED = _folded("profit ebitda ebit")
_MARGIN_TERM = next(iter(_MARGIN))
_PAGES = [[t] for t in tokenize("slide page chart exhibit", drop_stopwords=False)]
_UNIT_TOKENS = frozenset(tokenize("percent basis points million billion thousand", drop_stopwords=False))
_PER_SALES = frozenset(tokenize("percent percentage share", drop_stopwords=False))
# Earnings per share are stated as a figure per share ("seven cents per share", "$0.61 per diluted share"); a dividend
# per share is no EPS.
_EPS_STATED = re.compile(r"(?:\d|\bcents?)\s*(?:per|a) (?:fully )?(?:diluted |basic )?share\b", re.I)
_DIVIDEND = re.compile(r"\bdividend", re.I)
_EPS = frozenset(tokenize("EPS"))
_EPS_TERM = next(iter(_EPS))
# "Their offshore wind business": every activity is some company's business, so the word is no topic there ("business
# travel", "the business segment" keep it).
_THEIR_BUSINESS = re.compile(r"\b(?:their|its|our|his|her)\s+(?:[\w-]+\s+){0,3}business(?:es)?\b", re.I)
_BUSINESS = frozenset(tokenize("business", drop_stopwords=False))
# A number word right after a capitalised word names something ("Calix One", "Formula One") unless a unit follows
# ("Revenue Grew Ten Percent").
# Case matters: "a dividend of four pesewas" names nothing.
_NUMBER_NAMES = "One Two Three Four Five Six Seven Eight Nine Ten".split()
_NAMED_NUMBER = re.compile(rf"\b[A-Z][\w&-]*\s+({'|'.join(_NUMBER_NAMES + [w.upper() for w in _NUMBER_NAMES])})\b"
                           r"(?!\s+(?i:hundred|thousand|million|billion|percent|per cent|%))")
# Digits that state no figure: a period ("FY20", "Q3", "2021", "the first nine months"), a name ("COVID-19"), a lone
# "one" ("that's one.", "one of our customers"), a spoken list's "Two, we're taking...", a slide's number ("slide
# eight"; "margin slides 120 basis points" states one).
_NOT_A_FIGURE = re.compile(r"\bcovid-19\b|^\W*(?:and\s+)?(?:two|three|four|five)(?=\s*,)|"
                           r"\b(?:slide|page|chart|exhibit)\s+(?:\d{1,3}|[a-z]+)\b(?!\s*(?:%|percent|basis|bps|points?\b|"
                           r"million|billion))|"
                           r"\bone\b(?=\s*(?:[.,;:!?]|$|of\b))|"
                           r"\b(?:first|last|past|next|trailing) (?:\d{1,2}|three|six|nine|twelve) months\b|"
                           r"\b(?:FY|Q[1-4]|H[12])\s?'?\d{2,4}\b|\bQ[1-4]\b|"
                           r"\b(?:19|20)\d{2}\b(?!\s?(?:%|percent|thousand|million|billion))|"
                           # A year the transcript cut short at the end of a sentence ("through 202.").
                           r"\b(?:through|until|since|in|(?:half|quarter|year)\s+of)\s+(?:19|20)\d(?=\s*[.!?]?\s*$)",
                           re.I)
_SIX_MONTHS = re.compile(r"\b(?:first|1st)\s+(?:six|6)\s+months\b", re.I)
# "(1)" or "1." opening a list item; not "$(12) million" or "(8)%", accounting's negatives.
_LIST_MARKER = re.compile(r"(?<![$\w])\(\d{1,2}\)(?!\s*(?:%|percent|thousand|million|billion))|^\s*\d{1,2}[.)]\s")
# "fy": a full year, a span like a quarter or a half (a fiscal-year figure does not answer a fourth-quarter question);
# so are the trailing twelve months, "ttm" (_TRAILING).
_QUARTER = re.compile(r"^(q[1-4]|h[12]|fy|ttm)$")
# Written ways of stating a full-year figure that tokenize does not label "fy" ("full year" it does).
_FISCAL_YEAR = re.compile(
    r"\bfiscal (?:year )?(?:19|20)\d\d\b|\bfor the (?:fiscal )?year\b(?![- ](?:ago|over|on|to)\b)", re.I)
_YEAR = re.compile(r"^\d{4}$")
# Spoken and written ways of saying "so far this year".
_YEAR_TO_DATE = re.compile(r"\b(?:year[- ]to[- ]date|ytd|so far(?: (?:this|in the|in) (?:fiscal )?year)?)\b", re.I)
# "Taxes or financing?", "projects or plans on their calls": two alternatives, each ending its phrase (in "dividend or
# share repurchases" the word after "or" starts a phrase, and is no alternative to "dividend").
_OR = re.compile(r"\b([a-z][\w-]*) or ([a-z][\w-]*)(?=\s*(?:[?,.;]|$)|\s+(?:in|for|on|at|to|from|of|by|with|as|during|"
                 r"after|before|because)\b)", re.I)
# "Black Friday / Cyber Monday", "DTC/E-commerce": names of up to three capitalised words each side, or words set apart
# by spaces ("online / direct"); "price/mix", "loan/deposit ratio" and "risk/reward" are one thing each.
_NAME_SIDE = r"(?:[A-Z][\w&-]*\s+){0,2}[A-Z][\w&-]*"
_SLASH = re.compile(rf"\b({_NAME_SIDE})\s*/\s*({_NAME_SIDE})\b|\b([a-z][\w-]*) / ([a-z][\w-]*)\b")
# "Natural disasters such as floods or wildfires": the examples are instances of the words before them, so a
# sentence on floods speaks of natural disasters.
# The examples are single words, and the list must end there: at punctuation, a preposition, a verb ("floods or
# wildfires weighed"), not inside a longer name ("such as natural gas").
_SUCH_AS = re.compile(r"\b((?:[a-z][\w-]*\s+)?[a-z][\w-]*),?\s+such as\s+"
                      r"([a-z][\w-]*(?:(?:\s*,\s*(?:or\s+|and\s+)?|\s+(?:or|and)\s+)[a-z][\w-]*)*)"
                      r"(?=\s*(?:[?,.;:]|$)|\s+(?:\w+ed|rose|fell|grew|hurt|hit|in|on|at|for|to|from|during|as|were|was|"
                      r"are|is|have|had|has)\b)", re.I)
# A topic's own words end where a phrase about its circumstances begins ("payment holiday programs for customers
# during the pandemic": the programs are the topic, the customers and the pandemic its setting) -- when they are
# words enough to be a topic ("demand for EVs" is about EVs).
_TOPIC_END = re.compile(r"\s+(?:for|during|amid|because|due to|since|after|before|across|given)\b.*$", re.I | re.S)
_SETTING = re.compile(r"\s+(?:during|amid|because of|due to|given|in light of)\b.*$", re.I | re.S)
_COMPARABLE = re.compile(r"\bcomparables?\b", re.I)
_RECORDED = re.compile(r"\brecord(?:ed|ing)\b", re.I)
_SELLING = re.compile(r"\bselling\b", re.I)
# "What did ZAGG record?": the verb after an auxiliary, like "recorded" ("up to a record 130.4 million" is no verb).
_RECORD_VERB = re.compile(r"(\b(?:did|does|do|will|would)\b(?:\s+(?!(?:a|an|the)\b)[\w'’&.-]+){0,3}?\s+)record\b",
                          re.I)
_RECEIVED = re.compile(r"\breceiv(?:e|ed|es|ing)\b", re.I)
_CAPITAL_EXPENDITURE = re.compile(r"\bcapital expenditures?\b", re.I)
_NET_RESULT = re.compile(r"\bnet result\b(?!\s+(?:of|is|was|will)\b)", re.I)  # not "the net result of these actions"
_US = re.compile(r"\bU\.?S\.?(?![\w.$])|\bU\.S\.(?=\w)")
_HYPHENATED = re.compile(r"\b[a-z]+(?:-[a-z]+){2,}\b", re.I)
_ACRONYM = re.compile(r"\b[A-Z]{4,7}\b")  # shorter ones are initials of too many runs of words ("ESG")


@dataclass
class Candidate:
    n: int
    text: str
    terms: set[str]
    company: str = ""
    order: int = 0
    periods: set[str] = field(default_factory=set)
    dated: bool = False  # the sentence states its periods (else they are its document's)
    title_terms: set[str] = field(default_factory=set)  # who/what the document is about ("Acme Q3 results")
    coverage: float = 0.0
    cosine: float = 0.0
    pairs: set[tuple[str, str]] = field(default_factory=set)  # adjacent folded terms
    phrasing: float = 0.0  # share of the question's adjacent term pairs found adjacent here
    owners: list[str | None] = field(default_factory=list)  # per figure, the metric it belongs to (_owners)
    position: int = 0  # of the sentence among its passage's sentences

    @property
    def score(self) -> float:
        # Passage markers are numbered in retrieval order from 1.
        fit = self.coverage * (1 + PHRASING_WEIGHT * self.phrasing) + 0.5 * self.cosine
        return fit - RANK_WEIGHT * math.log(max(self.n, 1))


def _terms(text: str, tokens: list[str] | None = None) -> set[str]:
    """Folded terms, without those a negation directly governs ("no constraints" is no evidence of
    constraints). `tokens`: tokenize(text, drop_stopwords=False), when the caller has them already."""
    if tokens is None or _YEAR_TO_DATE.search(text):
        tokens = _tokens(_YEAR_TO_DATE.sub(" ytd ", text))
    kept = [t for i, t in enumerate(tokens) if not (i and tokens[i - 1] in _NEGATION)]
    return {_GROUP_OF.get(t, t) for t in kept if t not in STOPWORDS}


def _tokens(text: str) -> list[str]:
    """tokenize(text, drop_stopwords=False), with "comparable" kept apart from "compare" (both fold to "compar"):
    "comparable store sales" is a metric, "compare" only asks for a comparison; and "US" or "U.S." kept apart from
    "us" (tokenize lowers both): "US handle" is not "differentiate us"; and "recorded" kept apart from "record" (both
    stem to "record"): "revenues are recorded net" is no record revenue; and "selling" kept apart from "sell", a word
    for sales: "89 selling days", "selling, general and administrative" and "average selling price" are no sales; and
    "received" kept apart from "receivable" (both stem to "receiv"): "we received an exclusion notice" states no
    refund receivable; and "capital expenditures" said as "capex", the metric, not the words "capital" and
    "expenditure"; and a "net result" is a net profit (or loss), as calls outside the US say it; and "the first six
    months" are the first half ("net sales for the first six months" answer no question on the second quarter)."""
    text = _RECORD_VERB.sub(r"\1booked", _RECORDED.sub("booked", _COMPARABLE.sub("comps", text)))
    text = _CAPITAL_EXPENDITURE.sub("capex", _NET_RESULT.sub("net profit", _SIX_MONTHS.sub("first half", text)))
    text = _RECEIVED.sub("got", _SELLING.sub("vending", _US.sub(" usa ", text)))
    return tokenize(text, drop_stopwords=False)


def _initials(compound: str) -> str:
    return "".join(word[0] for word in compound.lower().split("-"))


def _spelled_out(text: str) -> dict[str, set[str]]:
    """Phrases of three words by their initials, with the phrase's own terms: "DTC" in one sentence and
    "direct-to-consumer" in another are the same thing, and so are "NIM" and "net interest margin". A phrase is a
    hyphenated compound of three or more words, or three words in a row none of which is a stopword."""
    phrases = _HYPHENATED.findall(text) + [" ".join(run) for run in _runs_of_three(text)]
    return {_initials(c.replace(" ", "-")): _terms(c.replace("-", " ")) for c in phrases}


def _says_in_full(text: str, letters: str) -> bool:
    """Whether some run of words in `text` has `letters` for initials, punctuation skipped, with or without its
    stopwords: "earnings before interest, taxes, depreciation and amortization" is EBITDA, "cost of goods sold"
    COGS."""
    words = re.findall(r"[A-Za-z]+", text)
    for run in (words, [w for w in words if w.lower() not in STOPWORDS]):
        initials = "".join(w[0] for w in run).lower()
        if letters in initials:
            return True
    return False


def _runs_of_three(text: str) -> list[tuple[str, str, str]]:
    runs = []
    for clause in re.split(r"[^\w\s'-]", text):
        # "non-performing loans" is three words, as NPL says
        words = re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", " ", clause).split()
        runs += [tuple(words[i:i + 3]) for i in range(len(words) - 2)
                 if all(re.fullmatch(r"[A-Za-z]+", w) and w.lower() not in STOPWORDS for w in words[i:i + 3])]
    return runs


def _pairs(tokens: list[str]) -> set[tuple[str, str]]:
    """Adjacent folded terms of tokenize(text, drop_stopwords=False), periods aside: "revenue during the second
    quarter decreased" says "revenue decreased"."""
    folded = [_GROUP_OF.get(t, t) for t in tokens if t not in STOPWORDS and not PERIOD.match(t)]
    return set(zip(folded, folded[1:], strict=False))


def _alternatives(question: str) -> list[tuple[frozenset[str], frozenset[str]]]:
    """Folded alternatives joined by "or" ("taxes or financing") or a slash (_SLASH: "Black Friday / Cyber Monday",
    "online / direct"); not two metrics ("revenue/EBITDA" asks for both) nor two periods."""
    pairs = []
    slashed = [(m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4)) for m in _SLASH.finditer(question)]
    for pairs_found, words in ((_OR.findall(question), 1), (slashed, 3)):
        for first, second in pairs_found:
            a, b = frozenset(_terms(first)), frozenset(_terms(second))
            if 0 < len(a) <= words and 0 < len(b) <= words and not a & b and not (a | b) & _METRICS \
                    and not period_labels(set(a | b)):
                pairs.append((a, b))
    return pairs


def _stated_periods(text: str, tokens: list[str]) -> set[str]:
    """The periods a sentence reports on: those it names, less what it compares with. `tokens`: tokenize(text,
    drop_stopwords=False)."""
    compared = _COMPARED.search(text)
    reported = text[:compared.start()] if compared else text
    own = " ".join(_BASE.split(clause, maxsplit=1)[0] for clause in _CLAUSE.split(reported))
    labels = period_labels(set(tokens if own == text else _tokens(own)))
    return _full_year(labels | {"ttm"} if _TRAILING.search(own) else labels, own)


def _full_year(labels: set[str], text: str) -> set[str]:
    """`labels` with "fy" when `text` states a full year ("fiscal 2021", "for the year", "FY2021") and no quarter
    or half: "the fourth quarter of fiscal 2021" reports a quarter."""
    if any(_QUARTER.match(label) for label in labels - {"fy"}):
        return labels
    if _FISCAL_YEAR.search(text) or any(label.startswith("fy") and label[2:].isdigit() for label in labels):
        return labels | {"fy"}
    return labels


def _calendar_years(labels: set[str]) -> set[str]:
    """`labels` with the calendar year a fiscal year starts in: PointsBet's "Q2 FY2022" is the December 2021
    quarter. (A title says "FY" for a fiscal year that is not the calendar year.)"""
    if not any("fy" in label for label in labels):
        return labels
    return labels | {str(int(label) - 1) for label in labels if _YEAR.match(label)}


def _outlook_in(question: str) -> bool:
    return bool(OUTLOOK_WORDS & _terms(question) or _INTENT.search(question))


def _following_quarter(earlier: str) -> str | None:
    """The quarter after the one an earlier question asked about ("q3" -> "q4", "q4" -> "q1"), if it named one."""
    quarters = sorted(label for label in period_labels(set(_tokens(earlier))) if re.fullmatch(r"q[1-4]", label))
    return f"q{int(quarters[0][1]) % 4 + 1}" if len(quarters) == 1 else None


def _looks_ahead(c: Candidate) -> bool:
    """Whether a sentence guides: forward-looking words other than those measuring a result against guidance, or
    a commitment ("on track to", "committed to delivering", "we plan to")."""
    if _COMMITS.search(c.text):
        return True
    if not MEASURED_AGAINST.search(c.text):
        return bool(OUTLOOK_WORDS & c.terms)
    return bool(OUTLOOK_WORDS & _terms(MEASURED_AGAINST.sub(" ", c.text)))


def _mentions(text: str, metrics: set[str]) -> list[tuple[str, list[str]]]:
    """Each mention of the metrics as (the word before it, the words after it), within its clause ("starting with the
    top line, revenues were..." puts nothing before revenues); the whole a part is measured against ("15.4 million or
    62% of our total revenue") is no mention."""
    found = []
    for clause in re.split(r"[^\w\s'’&-]+", text):
        tokens = _tokens(clause)
        for i, t in enumerate(tokens):
            if _GROUP_OF.get(t, t) in metrics and "of" not in tokens[max(0, i - 3):i]:
                found.append((tokens[i - 1] if i else "",
                              [w for w in tokens[i + 1:i + 4] if w not in ("our", "the", "its", "their")]))
    return found


def _part_of(text: str, metrics: set[str], asked: set[str]) -> bool:
    """Whether every mention of the metrics is qualified by a word the question does not ask about ("engines
    revenues", "net advertising revenues", "free cash flow" when operating cash flow was asked, "revenue from our
    identity products"); "total", "net", "adjusted", a period or a change ("third quarter revenue", "higher revenue")
    qualify nothing."""
    def qualified(word: str) -> bool:
        word = _GROUP_OF.get(word, word)
        return bool(word) and word not in STOPWORDS | asked | _WHOLE | _CHANGES and not PERIOD.match(word) \
            and not any(ch.isdigit() for ch in word)

    mentions = [qualified(before) or (after[:1] == ["from"] and len(after) > 1 and qualified(after[1]))
                for before, after in _mentions(text, metrics)]
    return bool(mentions) and all(mentions)


def _names_the_whole(text: str, metrics: set[str]) -> bool:
    """Whether a sentence names a metric as the company's whole: "24.9 million in total revenue"."""
    return any(before in _TOTAL for before, _ in _mentions(text, metrics))


def _figures(text: str) -> str:
    """The text with spelled numbers as digits and without the digits that state no figure: a number word in a name
    ("Calix One"), a list marker ("(1)"), a period ("below our FY20 plan"), "COVID-19"."""
    text = _LIST_MARKER.sub(" ", _NAMED_NUMBER.sub(lambda m: m.group(0)[:m.start(1) - m.start(0)], text))
    return spelled_numbers_to_digits(_NOT_A_FIGURE.sub(" ", text).lower())


def _figure_units(figures: str) -> list[str | None]:
    """The unit of each figure in _figures' text: "%", "points", "times"..., or None for a plain amount or count."""
    return [m.group(1) for m in _RATE.finditer(figures)]


def _states_no_amount(text: str) -> bool:
    """Whether a sentence states no amount of money: every figure it gives is a rate or a change ("engines revenues
    were up about 26%"), or none has a currency, a scale or a unit price ("two legs to the stool")."""
    figures = _figures(text)
    units = _figure_units(figures)
    return (bool(units) and all(units)) or not _AMOUNT_STATED.search(figures)


def _states_range(text: str) -> bool:
    """Whether a sentence states a range of figures (_RANGE_STATED)."""
    for m in _RANGE_STATED.finditer(text):
        if m.group("sep") == "and" and not m.group(0).lower().startswith("between"):
            continue
        if _YEAR.match(m.group("lown")) and _YEAR.match(m.group("highn")):
            continue  # from 2020 to 2021
        if (m.group("lowunit") or "").startswith(("%", "percent")) and not m.group("highunit"):
            continue  # "grew 12% to $1.05": a rate, then an amount
        return True
    return False


def _shares_only(text: str) -> bool:
    """Whether every figure a sentence gives is a percentage."""
    units = _figure_units(_figures(text))
    return bool(units) and all(u and u.lower().startswith(("%", "percent", "per cent")) for u in units)


def _states_a_number(text: str) -> bool:
    return any(ch.isdigit() for ch in _figures(text))


def focus_terms(question: str) -> set[str]:
    return _terms(question) - _FILLER


def _units(text: str) -> list[str]:
    """Sentences; runs of short lines (a label and its value, e.g. "Sentiment Score" / "0.62") are
    joined into one unit, and a lone short line (a bullet heading) is dropped."""
    units: list[str] = []
    run: list[str] = []
    for start, end in split_sentences(text):
        piece = " ".join(text[start:end].lstrip("•·-* \t").split())
        short = len(piece) < MIN_SENTENCE_CHARS or len(piece.split()) < MIN_SENTENCE_WORDS
        if short and not _SHORT_STATEMENT.match(piece):
            run.append(piece)
            continue
        if len(run) > 1:
            units.append(" ".join(run))
        run = []
        units.append(piece)
    if len(run) > 1:
        units.append(" ".join(run))
    return units


def _candidates(passages: dict[int, str], companies: dict[int, str],
                titles: dict[int, str] | None = None) -> list[Candidate]:
    """Sentences that could answer: not questions (an analyst's, in a transcript), not operator script or
    boilerplate; speaker labels dropped; each sentence once (overlapping chunks repeat them)."""
    seen: set[str] = set()
    out = []
    for n, text in passages.items():
        title_terms = _terms((titles or {}).get(n, ""))
        title_periods = _calendar_years(period_labels(title_terms))
        for position, unit in enumerate(_units(text)):
            sentence = _SPEAKER.sub("", unit)
            key = sentence.lower()
            if key in seen or "?" in sentence or _ASKING.match(sentence) or _ASKING_INSIDE.search(sentence) \
                    or _BOILERPLATE.search(sentence) \
                    or (_HOUSEKEEPING.search(sentence) and not _states_a_number(sentence)):
                continue
            seen.add(key)
            # A sentence names its period, or else is dated by its document ("MTN Ghana 2019 results call").
            # A hyphenated compound also stands for its initials ("direct-to-consumer" -> dtc).
            # Once, with clause marks: terms, periods and pairs read them whole, figures' owners by clause.
            clauses = _clause_tokens(sentence)
            tokens = [token for clause in clauses for token in clause]
            terms = _terms(sentence, tokens) | {_initials(c) for c in _HYPHENATED.findall(sentence)}
            if _COMMITS.search(sentence):  # "committed to delivering full-year GMV of..." gives guidance
                terms |= _GUIDANCE
            stated = _stated_periods(sentence, tokens)
            out.append(Candidate(n=n, text=sentence, terms=terms, company=companies.get(n, ""), order=len(out),
                                 periods=stated or title_periods, dated=bool(stated), title_terms=title_terms,
                                 pairs=_pairs(tokens),
                                 owners=_owners(clauses), position=position))
    return out


def _clause_tokens(sentence: str) -> list[list[str]]:
    """_tokens of each clause (_CLAUSE) of a sentence, from one tokenisation: a mark stands for each clause break."""
    clauses: list[list[str]] = [[]]
    for token in _tokens(_CLAUSE.sub(f" {_CLAUSE_BREAK} ", sentence)):
        if token == _CLAUSE_BREAK:
            clauses.append([])
        else:
            clauses[-1].append(token)
    return clauses


def _owners(clauses: list[list[str]]) -> list[str | None]:
    """For each figure of a sentence (periods and slide numbers aside), the metric or cost named last before it, if
    any: in "...mix of revenues, we're raising our adjusted EBITDA outlook to 140 to 145 million" both figures are
    EBITDA's. A metric stated as a share of sales is a margin ("gross profit as a percentage of net sales ... 33%"),
    so much per share is EPS (but a dividend's), and a figure no metric precedes is the one of the change it opens
    ("a 32 million drop in revenue"). A cost named in a clause of no figure after a metric owns nothing after it:
    "net income, despite elevated costs, was $12 million" states net income; but in "Direct operating expenses, were
    approximately 414 million" the cost opens the sentence and owns its figure. `clauses`: the sentence's clauses
    (_CLAUSE), each as _tokens."""
    owner, owners = None, []
    for tokens in clauses:
        before, figures = owner, len(owners)
        for i, token in enumerate(tokens):
            folded = _GROUP_OF.get(token, token)
            if folded in _OWNERS or folded in _COSTS:
                ratio = "of" in tokens[max(0, i - 2):i] and _PER_SALES & set(tokens[max(0, i - 4):i])
                owner = _MARGIN_TERM if ratio and owner is not None else folded
            elif any(ch.isdigit() for ch in token) and not PERIOD.match(token) and not _slide_number(tokens, i):
                per_share = tokens[i + 1:i + 3] == ["per", "share"] or tokens[i + 1:i + 4] == ["per", "dilut", "share"]
                owners.append(_EPS_TERM if per_share and owner not in _DIVIDENDS
                              else owner if owner is not None else _opened(tokens[i + 1:i + 6]))
        if len(owners) == figures and owner in _COSTS and before is not None:
            owner = before
    return owners


def _slide_number(tokens: list[str], i: int) -> bool:
    """ "Slide eight", "page 16": no figure ("margin slides 120 basis points" is one)."""
    return tokens[i - 1:i] in _PAGES and not tokens[i].endswith("%") and not (
        set(tokens[i + 1:i + 2]) & _UNIT_TOKENS)


def _opened(after: list[str]) -> str | None:
    for token in after:
        if any(ch.isdigit() for ch in token):
            return None
        folded = _GROUP_OF.get(token, token)
        if folded in _OWNERS:
            return folded
    return None


def answer(question: str, passages: dict[int, str], embed: Callable[[list[str]], np.ndarray] | None = None,
           companies: dict[int, str] | None = None, titles: dict[int, str] | None = None,
           tickers: dict[int, list[str]] | None = None) -> str:
    """Answer text with [n] markers, or NOT_FOUND. `passages` maps marker number -> passage text; `companies`
    marker number -> the passage's company (when known). Passages from several companies: a comparison is
    answered with each named company's best sentence, a list gathers across companies, and every quoted
    sentence is labelled with its company."""
    companies = companies or {}
    context_match = _CONTEXT.search(question)
    asked = _LEADING_CONJUNCTION.sub("", question[:context_match.start()] if context_match else question)
    # "Tell me about X's debt strategy" is a question, though no question word is left once its opening is gone.
    chatted = bool(_OPENER.match(asked))
    asked = _OPENER.sub("", asked)
    # "And free cash flow?" after "What revenue does Embraer expect for 2021?" asks what the earlier question asked
    # (an outlook, a figure) of another topic: a follow-up that is no question of its own takes the earlier form.
    bare = context_match is not None and (bool(_WHAT_ABOUT.match(asked)) or not _OWN_QUESTION.search(asked)) \
        and not _EXPLAIN_ASKED.search(asked)
    # "What about India?" is asked in the earlier question's words: its own "what" asks nothing.
    form = f"{context_match.group(1)} {_WHAT_ABOUT.sub('', asked)}" if context_match and bare else asked
    ticker_of_company = {companies.get(n, ""): tickers.get(n, []) for n in (tickers or {})} if tickers else {}

    def named_in(text: str, among: Iterable[str]) -> list[str]:
        """The companies of `among` that `text` names, in `among`'s order."""
        return [name for name in dict.fromkeys(among) if name and _names(name, text, ticker_of_company.get(name, []))]

    # "Which was higher?" after a comparison compares the same companies.
    named = named_in(asked, companies.values())
    comparing = len(named) > 1 or (not named and context_match is not None
                                   and len(named_in(context_match.group(1), companies.values())) > 1)
    # "Which had the higher gross margin, X or Y?" asks each side's margin, a figure; the comparative only says
    # which side wins ("higher" would ask for growth, and "faster" be a topic word).
    ranks_sides = comparing and bool(_COMPARATIVE.search(asked))
    if comparing:
        asked = _COMPARATIVE.sub(" ", asked)
    # "Where did revenue land relative to guidance?" asks for a result against guidance: a sentence may answer it
    # with or without forward-looking words, so neither kind is penalised.
    measured = bool(MEASURED_AGAINST.search(form)) and not _outlook_in(MEASURED_AGAINST.sub(" ", form))
    wants_outlook = not measured and (_outlook_in(form) or bool(_NEXT_PERIOD.search(form)))
    asked = _INTENT.sub(" ", _MONTH_OF_PERIOD.sub(" ", _END_OF.sub(" ", _ENDED.sub(" ", _IDIOM.sub(" ", asked)))))
    asked, came_to = _CAME_TO.subn(lambda m: m.group(1) or m.group(2), asked)  # came to rest: asks for the figure
    said_when = _SAID_WHEN.sub(" ", asked)
    left = period_labels(set(_tokens(said_when)))
    if said_when != asked and left and (any(label.isdigit() for label in left)
                                        or not any(label.isdigit() for label in period_labels(set(_tokens(asked))))):
        asked = said_when
    # Who and when are settled by retrieval (the company's documents) and checked below (the period): a
    # transcript rarely names its own company or restates the quarter in the sentence that answers.
    # The earlier question's names count too: a follow-up takes its company, and no word of its name is a topic.
    named_in_turns = f"{asked} {context_match.group(1)}" if context_match else asked
    ignored = {t for name in set(companies.values()) for t in _terms(" ".join(_named_words(name, named_in_turns)))}
    ignored |= {t for listed in (tickers or {}).values() for ticker in listed for t in _terms(ticker)
                if _named_words(ticker, named_in_turns)}
    # "FPL, NextEra Energy's Florida utility, ...": the description says who FPL is; the answer names FPL only.
    for described in _DESCRIBED.finditer(asked):
        terms = _terms(described.group(1))
        if not (period_labels(_terms(described.group(0).split(",")[0])) or terms & _METRICS):
            ignored |= {t for t in terms if not PERIOD.match(t)}  # "..., its Florida utility in 2020," dates it
    list_head = _LIST_HEAD.match(asked) if is_list_question(asked) else None
    if list_head:  # "which utilities ...": the category describes the companies, not the sentence
        ignored |= _terms(list_head.group(1) or list_head.group(2))
    # "Which biotech had more cash, A or B?" names the companies' kind, "Which backlog was larger?" the topic: a kind
    # is a word no sentence read says (checked once the sentences are read).
    which = _WHICH_KIND.match(asked) if comparing and not list_head else None
    compared_kind = _terms(which.group(1)) if which else set()
    focus = focus_terms(asked) - ignored
    # "The SBM segment": its name says which; "SBM sales totaled 80.5 million" need not say "segment".
    named_unit = _NAMED_UNIT.search(asked)
    if named_unit and named_unit.group(1).lower() not in STOPWORDS:
        focus -= _terms(named_unit.group(2))
    setting = _SETTING.search(asked) if list_head else None
    setting_terms = ((focus_terms(setting.group(0)) - focus_terms(asked[:setting.start()])) & focus
                     if setting and not period_labels(_terms(setting.group(0))) else set())
    about = _ABOUT.search(asked)
    if about:  # "What did the CEO of Hershey say about e-commerce?": the CEO speaks, e-commerce is the topic
        focus -= _ROLES & _terms(asked[:about.start()]) | _terms(asked[about.start():about.start(1)])
    # A bare follow-up ("And what about Q1?") borrows the earlier question's terms; one naming a metric ("And what
    # was EBITDA in that quarter?" after a revenue question) asks about that metric, not about revenue again.
    # "What about Europe?", "And Road Logistics?" after a question on US sales or Sea Logistics' EBIT: the name takes
    # the place of the earlier one, and only the earlier metric carries over.
    renamed = context_match is not None and bool(_NAMED.search(asked)) and not focus & _METRICS
    # "What was that growth rate the year before, in 2019?" points back to the earlier topic: its period is no topic
    # of its own (but "And headcount at the end of 2020?" after a question on revenue asks about headcount).
    own = {t for t in focus if not PERIOD.match(t)} if _POINTS_TO.search(asked) else focus
    if context_match and len(own) < 2 and not focus & _METRICS and not renamed:
        focus |= focus_terms(context_match.group(1)) - ignored
    elif context_match and _POINTS_BACK.search(asked):
        # "What share of sales is that?" after a question about direct-to-consumer sales: "that" is the earlier
        # topic (its metrics stay the follow-up's own).
        focus |= focus_terms(context_match.group(1)) - ignored - _METRICS
    elif context_match and (_WHAT_ABOUT.match(asked) or renamed) and not focus & _METRICS:
        # "What about the mattress fabrics segment?" after a question on net sales asks for that segment's sales.
        # ...in the earlier question's period, unless it names or implies its own ("next year", "targets").
        earlier = focus_terms(context_match.group(1))
        own_period = any(PERIOD.match(t) for t in focus) or _NEXT_PERIOD.search(asked) or _outlook_in(asked)
        focus |= earlier & _METRICS | (set() if own_period else {t for t in earlier if PERIOD.match(t)})
    periods = _full_year(period_labels(focus), asked)
    focus -= {t for t in focus if PERIOD.match(t)}
    # "What is each spending on capex?": the spending is the capex (but "capex and operating expenses" asks both).
    if focus & _CAPEX and _SPENDING.search(asked) and not _EXPENSES.search(asked):
        focus -= _SPEND
    # "How much did Lands' End grow?": a company grows by its sales, so a sentence on sales fits better (but one
    # that says "we grew 6% overall" still answers).
    implied = _REVENUE if focus and focus <= _CHANGES else set()
    focus |= implied
    if _THEIR_BUSINESS.search(asked):
        focus -= _BUSINESS
    # A sentence that says "DTC" says each word of "direct-to-consumer" (the words stay what the question asks).
    spelled_out = {acronym: words for acronym, words in _spelled_out(asked).items() if words}
    # ...and the other way round: "EBITDA" asked, "earnings before interest, tax, depreciation and amortization" said.
    acronyms = {term: word.lower() for word in _ACRONYM.findall(asked) for term in _terms(word) if term in focus}
    # "Taxes or financing": either word answers, so the pair counts as one term (the first).
    either = [(first, second) for first, second in _alternatives(asked) if first | second <= focus]
    focus -= {t for _, second in either for t in second}
    instances = {term: frozenset(_terms(kind) & focus) for kind, examples in _SUCH_AS.findall(asked)
                 for term in _terms(examples) & focus}
    # A change word among them ("such as higher freight") is no instance of anything.
    instances = {term: kind for term, kind in instances.items()
                 if kind and term not in kind and term not in _GROUP_OF.values()}
    focus -= set(instances)
    candidates = _candidates(passages, companies, titles)
    focus -= {t for t in compared_kind if not any(t in c.terms for c in candidates)}
    # "Which utilities saw higher bad debt expense because of the pandemic?": a setting that half the companies'
    # passages or more speak of ("the pandemic" in 2020) is what a sentence on anything else that year says too, not
    # what tells the companies apart, and one that none speaks of tells nothing; a setting a few speak of ("due to
    # supply chain disruptions") is the point. A period stays either way: it narrows the topic.
    speakers = {c.company for c in candidates}
    focus -= {t for t in setting_terms
              if (said := len({c.company for c in candidates if t in c.terms})) == 0 or 2 * said >= len(speakers)}
    if not focus or not candidates:
        return NOT_FOUND
    share_asked = bool(_SHARE_ASKED.search(asked))
    unit_asked = bool(_UNIT_WORD.search(_PER_UNIT.sub(" ", form)))
    cash_held = bool(focus & _CASH) and not _CASH_MOVED.search(form)
    explain_asked = bool(_EXPLAIN_ASKED.search(asked))
    basis_asked = bool(_ON_A_BASIS.search(named_in_turns))
    adjusted_asked = bool(_ADJUSTED.search(named_in_turns))
    next_period = _NEXT_PERIOD.search(asked)
    ahead = focus & _NEXT if next_period else set()
    # After a question about Q3, "next quarter" is Q4: then only a sentence about Q4 says it.
    next_quarter = next_period is not None and asked[next_period.end():].lower().startswith("quarter")
    following = _following_quarter(context_match.group(1)) if ahead and next_quarter and context_match else None
    for c in candidates:
        if ahead and _looks_ahead(c) and not _THIS_PERIOD.search(c.text) and (following is None
                                                                             or following in c.periods):
            c.terms |= ahead
        if acronyms:
            c.terms |= {a for a, letters in acronyms.items() if a not in c.terms and _says_in_full(c.text, letters)}
        for acronym in c.terms & set(spelled_out):
            if re.search(rf"\b{acronym.upper()}s?\b", c.text):  # written as an acronym: "gets" is no G-E-T
                c.terms |= spelled_out[acronym]
        # "gross merchandise value (GMV)" asked, "Gross merchandise value was..." said
        c.terms |= {acronym for acronym, words in spelled_out.items() if acronym in focus and words <= c.terms}
        c.terms |= {t for first, second in either if second <= c.terms for t in first}
        c.terms |= {t for example in c.terms & set(instances) for t in instances[example]}
        if focus & _RANGE and _states_range(c.text):
            c.terms |= focus & _RANGE
        if share_asked and _SHARE_OF.search(c.text):
            c.terms |= focus & _SHARE_TERMS
        if _MARGIN_STATED.search(c.text) and c.terms & _EARNED:
            c.terms |= focus & _MARGIN
        if _EPS_STATED.search(c.text) and not _DIVIDEND.search(c.text):
            c.terms |= focus & _EPS
    # A name the question asks about that is not one of the passages' companies ("What ARPU gain did Highline
    # report?") must be in the sentence that answers.
    proper = _terms(" ".join(re.findall(r"(?<!^)(?<![.?!] )\b[A-Z][a-zñéáíóú]+(?:\s+[A-Z][a-zñéáíóú]+)*", asked)))
    required_names = set() if _uniform_case(asked) else {t for t in proper & focus if not PERIOD.match(t)
                                                 and t not in _NOT_NAMES}
    # A code the question hinges on ("5G") that no passage contains: the topic is absent.
    codes = {t for t in focus if re.search(r"[a-z]", t) and re.search(r"\d", t)}
    if any(not any(code in c.terms for c in candidates) for code in codes):
        return NOT_FOUND
    counted = _HOW_MANY_DID.match(asked)
    # The question's verb, implied by a sentence that states the number of the counted thing.
    tallied = (focus_terms(counted.group(2)) & focus) - _terms(counted.group(1)) if counted else set()
    if tallied and tallied <= _TALLIES:
        things = _terms(counted.group(1)) & focus
        for c in candidates:
            if any(_terms(phrase) & things for phrase in _NUMBER_OF.findall(c.text)):
                c.terms |= tallied
    total = len(candidates)
    # "Order count" asks how many orders, which a sentence states without "count" (but "What did they say about the
    # rig count?" asks what was said, of the rig count).
    count_asked = bool(_COUNT.search(form)) and not about and not _QUALITATIVE.search(form)
    if count_asked and focus - _COUNTED:
        focus -= _COUNTED
    # Questions about a metric, or "how much/many", are answered by a sentence with a number in it.
    # So is "what was <anything> in <a period>" ("What was Tecnoglass' backlog at the end of Q3?").
    # ...unless measured against guidance, which words answer ("at the upper end of the guidance")
    quantity = bool((came_to and not MEASURED_AGAINST.search(form)) or _QUANTITY.search(form)
                    or count_asked
                    or (focus & _METRICS and not _SAID.match(form) and not explain_asked and (
                        re.match(r"\s*(what|how|compare)\b", form, re.I) or ranks_sides
                        # "SiTime Q4 2020 revenue outlook?": a metric, and no question word, asks for its figure
                        or not (chatted or _OWN_QUESTION.search(form))))
                    or (periods and not explain_asked and re.match(r"\s*what (?:was|were|is|are)\b", form, re.I))
                    or ((periods or focus & _METRICS) and _HOW_CHANGED.match(form))
                    # Two companies are compared by their figures ("Compare leverage: Constellium vs Ingersoll Rand")
                    # unless it is what they said, why, or how they see or go about something.
                    or (comparing and not explain_asked and not about and not _QUALITATIVE.search(asked)))
    of_whole = quantity and not share_asked and not focus & (_MARGIN | _CHANGES)
    whole_asked = not unit_asked and not focus & _TOTAL
    # A code the question hinges on ("5G") is what every answering sentence must say.
    required = (focus & _REQUIRED | codes) - implied
    # What an amount of money was ("What was revenue?"), not how it changed: answered by a sentence stating one.
    # Comparable (same-store) sales are a change by definition.
    # A metric named with no question word ("Hepsiburada GMV Q2 2021") asks its amount too.
    asks_amount = ((comparing or bool(re.match(r"\s*what\b", asked, re.I))
                    or not (chatted or _OWN_QUESTION.search(form)))
                   and bool(focus & _AMOUNTS)
                   and not focus & (_MARGIN | _COMPS) and not {"same", "store"} <= focus
                   # "Identiv Q3 2020 revenue and sequential growth?" asks the amount and its change
                   and (not focus & _CHANGES or bool(_AMOUNT_AND_CHANGE.search(asked)))
                   and not _QUANTITY.search(asked))
    # "What did X say about <topic>": the topic's most specific term must be in the sentence.
    # "Cash position": the cash held, which a sentence may state without the word ("We ended the quarter with $43.7
    # million in cash"); one that says "cash position" fits better still.
    light = implied | (_terms("position") if _POSITION_OF.search(asked) else set())
    weight = {t: math.log(1 + total / (1 + sum(t in c.terms for c in candidates))) * (LIGHT if t in light else 1)
              for t in focus}
    if about:
        topic = focus_terms(_TOPIC_END.sub("", about.group(1))) & set(weight)
        if len(topic) < 2:
            topic = focus_terms(about.group(1)) & set(weight)
        if topic:
            # Ties broken by the term itself: set order changes with each process's hash seed, and so would answers.
            required |= {max(topic, key=lambda t: (weight[t], t))}
    # math.fsum: a float sum depends on the order of its terms, and a set's order on the process's hash seed, so a
    # coverage of exactly 0.5 read 0.49999999999999994 in some runs and fell under MIN_COVERAGE (MTN Ghana's 2021
    # target, answered wrongly in about one dev run in seven). fsum rounds once, whatever the order.
    denominator = math.fsum(weight.values())
    asked_pairs = {pair for pair in _pairs(_tokens(asked)) if set(pair) <= focus}
    # "Revenue and gross margin": each metric may come from its own sentence, so a sentence is judged on the
    # metrics it states, and the answer adds a sentence for a metric the first leaves out (below).
    # "EBITDA margin" is one metric, the margin, and EBITDA says which: a sentence stating a margin must say EBITDA,
    # but in "revenue and EBITDA margin" a sentence on revenue alone need not.
    of_margin = {first for first, second in asked_pairs if first in _METRICS and second in _MARGIN}
    metrics = required & _METRICS - of_margin
    asked_metrics = metrics if len(metrics) > 1 else set()
    for c in candidates:
        left_out = asked_metrics - c.terms if asked_metrics & c.terms else set()
        c.coverage = math.fsum(weight[t] for t in focus & c.terms) / (denominator - math.fsum(weight[t]
                                                                                       for t in left_out))
        if quantity and (not _states_a_number(c.text) or _BASE_ONLY.match(c.text)):
            c.coverage *= 0.5  # "how much" is not answered by a sentence without a number (digits or words)
        elif asks_amount and _states_no_amount(c.text):
            c.coverage *= 0.8  # "what was Ferrari's revenue" is answered by an amount of money
        # Guidance has no parts: "advertising revenues, we are forecasting..." is still one part of revenue.
        if focus & _METRICS & c.terms and (_part_of(c.text, focus & _METRICS - _GUIDANCE, focus | ignored)
                                           or (not unit_asked and (_OF_A_UNIT.search(c.text)
                                                                   or _IN_A_UNIT.search(c.text)))):
            c.coverage *= 0.85  # "What was revenue?": "net advertising revenues were..." is one part of it
        elif focus & _METRICS & c.terms and not basis_asked and _leads_with_basis(c.text, adjusted_asked):
            c.coverage *= 0.9  # "What was revenue?": the reported figure, before an organic or pro forma one
        if whole_asked and focus & _METRICS & c.terms and _names_the_whole(c.text, focus & _METRICS) \
                and not _leads_with_basis(c.text, adjusted_asked):
            c.coverage *= 1.1  # "What was Identiv's revenue?": "24.9 million in total revenue" says it is the whole
        if cash_held and _CASH_MOVED.search(c.text):
            c.coverage *= 0.8  # cash held was asked: a cash flow is another metric
        if focus & _OWNERS & c.terms and c.owners and all(o is not None and o not in focus for o in c.owners):
            c.coverage *= 0.8  # it names the metric asked about, but every figure it gives is another metric's
        if of_whole and _shares_only(c.text) and any(_terms(m) & focus for m in _SHARE_OF.findall(c.text)):
            c.coverage *= 0.9  # "What were cement dispatches?": "23% of cement dispatches" is a share of them
        # A call's outlook speaks of a later part of its year: "we are forecasting total revenues to be between..." in
        # the Q3 2020 call answers "What did they guide for Q4 2020?" (not for Q4 2021, nor for 2022).
        if _conflict(periods, c.periods) and not (wants_outlook and not c.dated and _FORECASTS.search(c.text)
                                                  and _later_in_year(periods, c.periods)):
            c.coverage *= 0.5  # Q3 actuals do not answer a question about Q4 (nor 2021 about 2020, nor the TTM Q3)
        if not measured and wants_outlook != _looks_ahead(c):
            c.coverage *= 0.8  # guidance does not answer "what was", and results do not answer "what do they expect"
        if asked_pairs:
            c.phrasing = len(asked_pairs & c.pairs) / len(asked_pairs)
        if len(_HEDGES.findall(c.text)) >= 3:
            c.coverage *= 0.8  # spoken hedging ("uh, you know, um") marks an answer in passing, not the statement
        if explain_asked and _EXPLAINS.search(c.text):
            c.coverage = min(1.0, c.coverage * 1.25)  # "Why...?" is answered by a sentence giving a reason
    # A name is satisfied by the sentence, by its document's title (a report says "the company" once its title has
    # named it) or by its passage: "This partnership [with Zimmer Biomet] allows us to access a market of seven and a
    # half million annual procedures" follows the sentence naming the partner.
    named_in_passage = {n: _terms(text) & required_names for n, text in passages.items()} if required_names else {}

    def eligible(c: Candidate) -> bool:
        if not (required - asked_metrics - of_margin) <= c.terms \
                or not required_names <= c.terms | c.title_terms | named_in_passage.get(c.n, set()):
            return False
        if c.terms & _MARGIN and not of_margin <= c.terms:
            return False
        if asked_metrics and not asked_metrics & c.terms:
            return False
        return c.coverage >= MIN_COVERAGE_WITH_MEANING

    # Only sentences that can answer are embedded: the cosine decides nothing for the rest (half the candidates
    # of ten passages, and embedding them was most of an answer's time).
    able = [c for c in candidates if eligible(c)]
    if embed is not None and able:
        vectors = embed([asked] + [c.text for c in able])
        for c, cos in zip(able, vectors[1:] @ vectors[0], strict=True):
            c.cosine = float(cos)

    def answers(c: Candidate) -> bool:
        return c.coverage >= MIN_COVERAGE or c.cosine >= MIN_COSINE

    ranked = sorted((c for c in able if answers(c)), key=lambda c: -c.score)
    if not ranked:
        return NOT_FOUND
    named = named_in(asked, (c.company for c in candidates))
    if not named and context_match:  # "What about their revenue growth?" after a comparison compares again
        named = named_in(context_match.group(1), (c.company for c in candidates))
    several = len({c.company for c in candidates}) > 1
    # "Who grew online faster, YETI or Lands' End?" ranks the companies it names: each side answers, not a list.
    listing = is_list_question(asked) and not (ranks_sides and len(named) > 1)
    missing_sides: list[str] = []
    if listing and several:
        # Across companies: each company's best sentence that is close to the best overall.
        best = ranked[0]
        chosen = [next(c for c in ranked if c.company == name) for name in dict.fromkeys(c.company for c in ranked)]
        # Another company's sentence must also share two of the question's words with it (one, if it has one): a
        # rare word alone is a coincidence of wording ("Which retailers closed stores?": "schools were closed").
        shared = min(LIST_ITEM_MIN_TERMS, len(focus))
        chosen = [c for c in chosen if c.coverage >= LIST_SHARE_OF_BEST * best.coverage
                  and (c is best or len(focus & c.terms) >= shared)][:MAX_LIST_ITEMS]
    elif listing:
        best = ranked[0]
        # Items of a list share the question's most distinctive name (capitalised word, e.g. a product)
        # that the best item has; without names, its most distinctive term.
        names = _terms(" ".join(re.findall(r"(?<!^)\b[A-Z][\w-]*", asked.strip()))) & best.terms & focus
        anchor = max(names or (focus & best.terms), key=lambda t: (weight[t], t))
        chosen = [c for c in ranked if c.coverage >= LIST_SHARE_OF_BEST * best.coverage
                  and anchor in c.terms][:MAX_LIST_ITEMS]
        # Keep document order so a list reads in the order the source gives it.
        chosen.sort(key=lambda c: c.order)
    elif len(named) > 1:
        # A comparison: each named company's own best sentence, in the order the question names them; a side
        # with none is said to be missing rather than left out silently. A side whose sentences all fall short of
        # a lone answer's bar takes its best one that can answer (the required words, some coverage, a number when
        # one is asked): the other side shows the question is answerable, and two calls word the same metric
        # differently ("Total revenue for the second quarter..." / "Revenues for the second quarter...").
        fallback = sorted((c for c in able if not quantity or _states_a_number(c.text)), key=lambda c: -c.score)
        sides = [next((c for c in ranked if c.company == name), None)
                 or next((c for c in fallback if c.company == name), None) for name in named]
        chosen = [c for c in sides if c is not None]
        if chosen:
            missing_sides = [name for name in named if name not in {c.company for c in chosen}]
    else:
        # One company named ("What about Danaher?" after a question about GE, whose passages came along as
        # context): only its own sentences answer.
        if len(named) == 1:
            ranked = [c for c in ranked if c.company == named[0]]
            if not ranked:
                return NOT_FOUND
        chosen = ranked[:1]
        # "Revenue and gross margin": a second sentence of the same company when the first leaves out a metric
        # the question asks for and the second names it.
        missing = required - chosen[0].terms if required else set()
        missing |= {t for t in focus & _METRICS if t not in chosen[0].terms}
        extra = next((c for c in ranked[1:] if c.company == chosen[0].company and missing & c.terms), None)
        # "What did Dentsply Sirona say about its orthodontics business?" asks for what was said, which one sentence
        # rarely holds: the next sentence on the topic that fits about as well is said too.
        if extra is None and about and not quantity:
            extra = next((c for c in ranked[1:] if c.company == chosen[0].company
                          and c.score >= SAID_ALSO_SHARE * chosen[0].score), None)
        if extra is not None:
            chosen.append(extra)
        # "Why did margin fall?": a speaker names the topic ("Consumables operating margin was -9.4%...", "we've been
        # asked how we view...") and explains in the next sentence ("There are two primary reasons..."), which
        # shares few of the question's words. Unless the sentence explains itself ("due to...").
        # One more when that sentence only announces them ("There are two primary reasons for the decline.").
        said = chosen[0]
        if ((explain_asked or _ASKED_ABOUT.search(said.text) or _INTRODUCES.match(said.text))
                and not _EXPLAINS.search(said.text)):
            for place in (1, 2):
                after = next((c for c in candidates if c.n == said.n and c.position == said.position + 1), None)
                if after is None or after in chosen:
                    break
                chosen.insert(place, after)
                if not _ANNOUNCES.search(after.text) or _EXPLAINS.search(after.text):
                    break
                said = after
    # "Which banks ...?" is answered by naming them, even when one company's sentence is all that qualifies.
    label = len({c.company for c in chosen}) > 1 or (listing and several) or bool(missing_sides)
    return " ".join([*(f"{c.company}: {c.text} [{c.n}]" if label and c.company else f"{c.text} [{c.n}]"
                       for c in chosen), *(f"{name}: not found in the indexed documents." for name in missing_sides)])


def _leads_with_basis(text: str, adjusted_asked: bool) -> bool:
    """Whether a sentence states its figures on another basis than the reported one ("On an organic basis, total
    revenues decreased 14.30%"; not "Revenue was $5.2 billion, up 8%, or 6% organically"). A non-GAAP figure is
    the one asked when the question asks for an adjusted one."""
    basis = _ON_A_BASIS.search(text)
    return basis is not None and not _states_a_number(text[:basis.start()]) \
        and not (adjusted_asked and _ADJUSTED.match(basis.group(0)))


# How far into its year a period ends.
_LATENESS = {"q1": 1, "h1": 2, "q2": 2, "q3": 3, "h2": 4, "q4": 4, "fy": 5}


def _later_in_year(asked: set[str], call: set[str]) -> bool:
    """Whether the period asked is a later quarter (or the whole) of the year a call's period is in."""
    asked_years = {p for p in asked if _YEAR.match(p)}
    if asked_years and not asked_years & call:
        return False
    return max((_LATENESS.get(p, 0) for p in asked), default=0) > max((_LATENESS.get(p, 0) for p in call), default=0)


def _conflict(asked: set[str], stated: set[str]) -> bool:
    """Whether a sentence's periods rule it out: another quarter (or half) than the one asked, or another year;
    a year in common does not make Q2 answer a question about Q3."""
    for kind in (_QUARTER, _YEAR):
        asked_of_kind = {p for p in asked if kind.match(p)}
        stated_of_kind = {p for p in stated if kind.match(p)}
        if asked_of_kind and stated_of_kind and not asked_of_kind & stated_of_kind:
            return True
    return False


def _uniform_case(question: str) -> bool:
    """Whether the question's capitals say nothing of what is a name: it is in title case ("What Was AMCOR's Adjusted
    EBITDA") or capitalises no word after its first."""
    words = re.findall(r"[A-Za-z]+", question)
    capitalised = sum(w[0].isupper() for w in words[1:])
    return capitalised == 0 or capitalised + words[0][0].isupper() > 0.4 * len(words)


def _bare(word: str) -> str:
    """A name's word without possessive, final period or accents: "Itaú" asks about "Itau CorpBanca"."""
    word = unicodedata.normalize("NFKD", re.sub(r"(?:['’]s?|\.)$", "", word))
    return "".join(ch for ch in word if not unicodedata.combining(ch))


def _named_words(name: str, question: str) -> set[str]:
    """The words of a company's name (or a ticker) that the question writes as the name writes them: "Energy" in
    "What did NextEra Energy say?", but not "energy" in "What did Lands' End say about energy costs?", nor "home" in
    "Which companies said working from home boosted demand?" with the New Home Company's call among the passages
    (lululemon and eBay as they write themselves). Any case matches in a question whose case says nothing
    (_uniform_case)."""
    pattern = r"[A-Za-z][\w'’&.-]*"
    uniform = _uniform_case(question)
    asked = {_bare(w).lower() if uniform else _bare(w) for w in re.findall(pattern, question)}
    return {w for w in re.findall(pattern, name) if (_bare(w).lower() if uniform else _bare(w)) in asked}


def _names(company: str, question: str, tickers: list[str]) -> bool:
    """Whether the question names this company: a word of its name as the name writes it (see _named_words), or a
    ticker as written in capitals."""
    named = any(len(t) > 2 for t in tokenize(" ".join(_named_words(company, question))))
    written = set(re.findall(r"\b[A-Z][A-Z0-9.]*\b", question))
    return named or any(t in written for t in tickers)


def rewrite(history: list[tuple[str, str]], followup: str) -> str:
    """Make a follow-up standalone by carrying what it keeps of the previous question (_carried) along when the
    follow-up leans on it (pronouns, "and ...", or too few content words of its own). A previous question that
    leaned in turn brings its own context: "What did they guide?" after "And the operating margin?" after "What was
    Texas Instruments' revenue?" still knows the company."""
    turns = [i for i, (role, _) in enumerate(history) if role == "user"]
    if not turns or not _leans(followup):
        return followup
    last = turns[-1]
    previous = rewrite(history[:last], history[last][1].strip())
    nested = _CONTEXT.search(previous)
    if nested:  # one level of context, read as one text
        previous = f"{previous[:nested.start()]} {nested.group(1)}"
    return f"{followup.strip()} (context: {_carried(previous, followup)})"


# A quarter, half or full year ("the second quarter of", "Q2", "first half"), and a year ("fiscal 2020", "FY21").
_PART_OF_YEAR = re.compile(r"\b(?:(?:the\s+)?(?:first|second|third|fourth|1st|2nd|3rd|4th)[\s-](?:fiscal\s+)?"
                           r"(?:quarter|half)|(?:the\s+)?(?:first|last|past)\s+(?:three|six|nine|twelve|\d{1,2})\s+months"
                           r"|q[1-4]|h[12]|full[\s-]year)\b(?:\s+of\b)?", re.I)
_YEAR_NAMED = re.compile(r"\b(?:fiscal\s+(?:year\s+)?)?(?:19|20)\d\d\b|\bfy\s?\d\d(?:\d\d)?\b", re.I)
_PARTS_OF_YEAR = frozenset("q1 q2 q3 q4 h1 h2 fy".split())
# A follow-up that qualifies the earlier topic rather than naming a new one: "And for Energy Resources?", "What about
# on an organic basis?", "And in the Caribbean?", "How does that compare with last year?".
_QUALIFIES = re.compile(r"^\W*(?:(?:and|so|also)\s+)?(?:(?:what|how)\s+about\s+)?(?:for|in|at|on|during|over|within|"
                        r"across|by|from|excluding|ex|including|outside)\b", re.I)
# A segment, region or business a question narrows to: "in its core business", "for the rental segment", "in
# Colombia" (a name only after "in", "within" or "across": "for Texas Instruments" names the company).
_UNIT_WORDS = "segment division business unit region"
_QUALIFIER = re.compile(r"\b(?:(?:in|for|at|within|across)\s+(?:(?:its|their|the|our)\s+)?(?:[a-z][\w-]*\s+){0,3}"
                        rf"(?:{'|'.join(_UNIT_WORDS.split())})s?|(?:in|within|across)\s+(?:the\s+)?"
                        r"[A-Z][\w&.-]*(?:\s+(?:and\s+)?[A-Z][\w&.-]*)*)\b")
_UNIT_WORD = re.compile(rf"\b(?:{'|'.join(_UNIT_WORDS.split())})s?\b", re.I)
# Cash that came in or went out ("we used $7 million of cash from operations") is no cash held at a date.
_CASH_MOVED = re.compile(r"\bcash\s+(?:from|used?|usage|generated|provided|flows?|burn|(?:was|were)\s+received)\b|"
                         r"\boperating activities\b|"
                         r"\b(?:used|generated|burned|spent)\s+(?:\S+\s+){0,3}?(?:of|in)\s+cash\b", re.I)
_CASH = _folded("cash")
_PER_UNIT = re.compile(r"\bper\s+units?\b", re.I)  # "revenue per unit" names no business unit
# A segment's or division's figure is one part of the company's ("This business is a component of the consumables
# segment and had net sales of...", "commercial segment fourth quarter sales were 91 million"); "with growth in all
# three segments" or "in each segment" speaks of the whole.
_OF_A_UNIT = re.compile(r"\b(?!(?:a|an|each|every|per|by|all|both|one|single)\b)[\w&'’-]+\s+"
                        r"(?:segment|division)\b(?!s)", re.I)
# "Within our identity business, revenue increased...": the figure of one business of the company's.
_IN_A_UNIT = re.compile(r"\b(?:within|in|for)\s+(?:our|the|its)\s+"
                        r"(?!(?:overall|total|whole|entire|core|own|combined)\b)[\w&'’-]+\s+(?:business|unit)\b(?!es|s)",
                        re.I)
_TOPIC_POINTER = re.compile(r"\b(?:it|that|this|those|these)\b", re.I)
# What a follow-up naming a new topic still takes from the earlier question: whether it asked for an outlook, a
# change or the next period (besides who and when).
_NOT_TOPIC = OUTLOOK_WORDS | _CHANGES | _NEXT | frozenset(_GROUP_OF.get(t, t) for t in OUTLOOK_WORDS)
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
# Acronyms that name a metric, not a company ("EBITDA", "FFO"; not "ZAGG" or "GCP").
_TOPIC_ACRONYMS = _REQUIRED | _folded("ffo affo gmv nim roe roa noi aum nav cogs sga arpu rpo")
_UNITS_OF_BUSINESS = frozenset(tokenize(_UNIT_WORDS))


def _carried(earlier: str, followup: str) -> str:
    """What of the conversation so far a follow-up keeps: every slot it does not fill itself, from the latest
    question (which carries what it kept in turn). A period the follow-up names replaces the earlier one ("And for
    the first half?" after a question on Q2 2020 is about the first half of 2020). A topic it names replaces the
    earlier topic: "And the backlog?" after a question on net new orders keeps the company, the period and whether
    an outlook was asked, not "net new orders", which would outweigh "backlog" in retrieval and answering alike.
    A follow-up that qualifies the earlier topic ("And for Energy Resources?") or points back at it ("How does that
    compare with last year?") keeps the topic. Words of a name are kept: they are capitalised or possessive (from a
    question in lower case throughout, nothing is taken out)."""
    labels = period_labels(_terms(followup))
    if labels & _PARTS_OF_YEAR:
        earlier = _PART_OF_YEAR.sub(" ", earlier)
    if any(label.isdigit() for label in labels):
        earlier = _YEAR_NAMED.sub(" ", earlier)
    if _QUALIFIES.match(followup) and any(not PERIOD.match(t) for t in focus_terms(followup)):
        # "And in offshore wind?" after "...EBITDA in its core business...": one qualifier replaces the other.
        earlier = _QUALIFIER.sub(lambda m: m.group(0) if _names_no_qualifier(m) else " ", earlier)
    # A question capitalising no word after its first says nothing of which words are names: its topic stays.
    if _names_a_topic(followup) and re.search(r"\s[A-Z]", earlier):
        topic = {t for t in focus_terms(earlier) - _NOT_TOPIC if not PERIOD.match(t)}
        earlier = _WORD.sub(lambda m: "" if _is_topic_word(m.group(0), topic) else m.group(0), earlier)
    return " ".join(earlier.split())


def _names_no_qualifier(match: re.Match[str]) -> bool:
    """A period ("in the first quarter"), a metric ("in revenue per unit") or a company ("in Danaher's Life Sciences
    segment") is no segment or region to replace."""
    terms = _terms(match.group(0))
    return bool(period_labels(terms) or terms & _METRICS or match.string[match.end():match.end() + 2] in ("'s", "’s"))


def _names_a_topic(followup: str) -> bool:
    """Whether a follow-up names a topic of its own: a word that is no name, period, outlook or change ("And the
    backlog?", "And EBITDA?"), not only a company, segment or region ("What about Danaher?", "And in Aviation?")."""
    if _QUALIFIES.match(followup) or _TOPIC_POINTER.search(followup):
        return False
    # "What drove the increase?" asks why the earlier figure changed.
    words = _WORD.findall(_EXPLAIN_ASKED.sub(" ", followup))
    own = focus_terms(" ".join(w for i, w in enumerate(words)
                               if not i or w[0].islower() or _terms(w) <= _TOPIC_ACRONYMS)) - _NOT_TOPIC
    # "And the SBM segment?" asks for the earlier figure of one segment ("And the segment's sales?" names its own).
    if own & _UNITS_OF_BUSINESS and not own & _METRICS:
        return False
    return any(not PERIOD.match(t) for t in own)


def _is_topic_word(word: str, topic: set[str]) -> bool:
    """A lowercase word, or a metric's acronym (EBITDA, FFO), of the earlier topic; a name ("Dr. Reddy's", "GE's",
    "ZAGG", "GCP Applied Technologies") is no topic word."""
    terms = _terms(word)
    if re.search(r"['’]s?$", word) or (word[0].isupper() and not (word.isupper() and terms <= _TOPIC_ACRONYMS)):
        return False
    return bool(terms) and terms <= topic


def _leans(question: str) -> bool:
    """Whether a follow-up needs the conversation: it points back (pronouns, "and ...", "what about ..."), has too
    few content words of its own, or names no one where a question about one company's figures would ("What was
    the non-GAAP gross margin?" after a question about SiTime is about SiTime). A list question ("Which companies
    ...?") asks across the corpus and stands alone."""
    words = re.findall(r"[a-z']+", question.lower())
    if _ANAPHORA & set(words) or question.strip().lower().startswith(("and", "what about", "how about")):
        return True
    return not is_list_question(question) and (len(focus_terms(question)) < 2 or not _NAMED.search(question.strip()))


def handle(call: LocalCall) -> str:
    prompt = prompt_text(call.messages)
    if call.task == "rewrite":
        followup = parse_tag(prompt, "followup")
        if followup is None:
            raise ValueError("local/extractive rewrites need a prompt with <history> and <followup> (rewrite.vN)")
        return rewrite(parse_history(parse_tag(prompt, "history") or ""), followup)
    question = parse_tag(prompt, "question")
    if question is None:
        raise ValueError("local/extractive needs a prompt with <question> and <passages> (answer.vN)")
    embed = call.embedder.embed_for_query if call.embedder is not None else None
    found = parse_passages_with_attributes(prompt)
    return answer(question, {n: text for n, (text, _) in found.items()}, embed,
                  companies={n: attributes.get("company", "") for n, (_, attributes) in found.items()},
                  titles={n: attributes.get("title", "") for n, (_, attributes) in found.items()},
                  tickers={n: [t for t in attributes.get("tickers", "").split(",") if t]
                           for n, (_, attributes) in found.items()})


def register_models(register: Callable[[RegisteredModel], None]) -> None:
    register(RegisteredModel(
        name="local/extractive", tasks=frozenset({"answer", "rewrite"}), handler=handle,
        description="Offline extractive answerer: quotes the retrieved sentences that best cover the question "
        "(not a language model)."))
