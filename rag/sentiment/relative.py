"""Scores relative to a baseline: the same ticker's own history (change vs its previous document, difference from
the mean of its earlier ones) and a peer distribution (the percentile among the corpus's, or one sector's,
documents scored by the same model and prompt). An absolute score of +0.30 can be a company's weakest call in years;
these make "less positive than usual" visible. Pure functions over stored scores; rag.sentiment.service picks the
scores (current versions only, one model + prompt + scorer version, so scores of different scorers never mix)."""

from __future__ import annotations

import re
import statistics
from typing import Literal

from pydantic import BaseModel, Field

from rag.sentiment.scoring import DocumentSentiment, TickerSentiment

Baseline = Literal["corpus", "sector"]
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")
_PART = re.compile(r"\b([QH])([1-4])\b", re.I)


class RelativeScore(BaseModel):
    doc_id: str
    score: float
    previous_doc_id: str | None = Field(None, description="The ticker's document just before this one (by date, "
                                        "else reported period).")
    previous_score: float | None = None
    change_vs_previous: float | None = Field(None, description="score - previous_score.")
    own_mean: float | None = Field(None, description="Mean score of the ticker's earlier documents.")
    vs_own_mean: float | None = Field(None, description="score - own_mean: below 0 is less positive than usual.")
    own_documents: int = Field(0, description="Earlier documents of the ticker with a score.")
    percentile: float | None = Field(None, description="Share of the peer documents scoring below this one, 0-100 "
                                     "(ties count half).")
    peers: int = Field(0, description="Documents in the peer group (this one included).")
    peer_group: str = Field("corpus", description="corpus, or sector:NAME.")


class TrendPoint(BaseModel):
    doc_id: str
    title: str
    date: str | None
    period: str | None
    score: float
    label: str
    change: float | None = Field(None, description="Change vs the previous point.")
    percentile: float | None = Field(None, description="Among the peer documents, 0-100.")


class RelativeTickerSentiment(TickerSentiment):
    """The roll-up with its baselines: the newest document against the ticker's own history and its peers, and
    the trend of every document."""

    relative: RelativeScore | None = Field(None, description="The newest document vs the ticker's own history and "
                                           "its peers.")
    trend: list[TrendPoint] = Field(default_factory=list, description="The ticker's documents in time order.")
    baseline: str = Field("corpus", description="Peer group of the percentiles: corpus or sector.")


def period_key(date: str | None, period: str | None) -> tuple[int, int, str]:
    """Sort key in time: the ISO date if known; else the reported period ("Q3 2020", "H1 2020", "FY2021",
    "Q3 FY2020") placed at its end month; undated documents first."""
    if date:
        return int(date[:4]), int(date[5:7]), date
    if period:
        year = _YEAR.search(period)
        if year:
            part = _PART.search(period)
            month = 12 if not part else (int(part.group(2)) * (3 if part.group(1).upper() == "Q" else 6))
            return int(year.group(1)), month, period
    return 0, 0, ""


def chronological(scores: list[DocumentSentiment]) -> list[DocumentSentiment]:
    return sorted(scores, key=lambda s: (period_key(s.date, s.period), s.created_at, s.doc_id))


def percentile(value: float, population: list[float]) -> float:
    below = sum(v < value for v in population)
    ties = sum(v == value for v in population)
    return round(100.0 * (below + 0.5 * ties) / len(population), 1)


def relative(target: DocumentSentiment, ticker_scores: list[DocumentSentiment], peers: list[DocumentSentiment],
             baseline: Baseline = "corpus") -> RelativeScore:
    """`ticker_scores`: the current scores of the ticker's documents (the target among them or not); `peers`: the
    current scores of every document of the corpus by the same scorer."""
    ordered = chronological([s for s in ticker_scores if s.doc_id != target.doc_id] + [target])
    earlier = ordered[:[s.doc_id for s in ordered].index(target.doc_id)]
    group = "corpus"
    if baseline == "sector":
        if not target.sector:
            raise ValueError(f"document {target.doc_id} has no sector metadata to compare within")
        group = f"sector:{target.sector}"
        peers = [p for p in peers if p.sector == target.sector]
    population = [p.score for p in peers if p.doc_id != target.doc_id] + [target.score]
    out = RelativeScore(doc_id=target.doc_id, score=target.score, own_documents=len(earlier),
                        percentile=percentile(target.score, population), peers=len(population), peer_group=group)
    if earlier:
        previous = earlier[-1]
        own_mean = statistics.mean(s.score for s in earlier)
        out = out.model_copy(update={
            "previous_doc_id": previous.doc_id, "previous_score": previous.score,
            "change_vs_previous": round(target.score - previous.score, 4), "own_mean": round(own_mean, 4),
            "vs_own_mean": round(target.score - own_mean, 4)})
    return out


def trend(scores: list[DocumentSentiment], peers: list[DocumentSentiment] | None = None) -> list[TrendPoint]:
    """The documents in time order with each one's change vs the one before (and percentile among `peers`)."""
    points: list[TrendPoint] = []
    population = [p.score for p in peers or []]
    for s in chronological(scores):
        change = round(s.score - points[-1].score, 4) if points else None
        rank = percentile(s.score, population) if population else None
        points.append(TrendPoint(doc_id=s.doc_id, title=s.title, date=s.date, period=s.period, score=s.score,
                                 label=s.label, change=change, percentile=rank))
    return points


def with_baselines(rolled: TickerSentiment, scores: list[DocumentSentiment], peers: list[DocumentSentiment],
                   baseline: Baseline = "corpus") -> RelativeTickerSentiment:
    """`rolled` (the roll-up of `scores`) with the newest document's relative score and the trend. `peers` are the
    corpus's current scores by the same scorer; with the sector baseline, percentiles are within the newest
    document's sector."""
    newest = chronological(scores)[-1]
    relative_score = relative(newest, scores, peers, baseline)
    if baseline == "sector":
        peers = [p for p in peers if p.sector == newest.sector]
    ids = {p.doc_id for p in peers}
    population = peers + [s for s in scores if s.doc_id not in ids]
    return RelativeTickerSentiment(**rolled.model_dump(), relative=relative_score, trend=trend(scores, population),
                                   baseline=baseline)
