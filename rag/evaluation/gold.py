"""Gold question files (eval/gold/*.yaml)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

Split = Literal["dev", "test"]


def split_of(question: str) -> Split:
    """Half the questions each, fixed by the question text (so adding a question never moves another): tune on
    dev, gate on test."""
    return "test" if int(hashlib.sha256(question.encode()).hexdigest(), 16) % 2 else "dev"


class GoldQuestion(BaseModel):
    """What every suite's gold item has: a question, the facts a right answer states, or an abstention."""

    model_config = ConfigDict(extra="forbid")

    id: str
    question: str
    facts: list[str] = Field(default_factory=list, description="Regexes that must all match the answer.")
    abstain: bool = False

    @model_validator(mode="after")
    def _facts_compile(self) -> GoldQuestion:
        for fact in self.facts:
            re.compile(fact)
        return self

    def fact_matches(self, text: str) -> list[bool]:
        return [bool(re.search(f, text, re.IGNORECASE)) for f in self.facts]


class GoldItem(GoldQuestion):
    doc: str | None = Field(None, description="Document the facts must be cited from.")
    evidence: str | None = Field(None, description="Substring of the gold passage (retrieval metrics).")

    @model_validator(mode="after")
    def _complete(self) -> GoldItem:
        if not self.abstain and not (self.facts and self.doc and self.evidence):
            raise ValueError(f"{self.id}: answerable items need facts, doc and evidence")
        return self


class SentimentGold(BaseModel):
    model_config = ConfigDict(extra="forbid")

    doc: str
    score: float = Field(ge=-1, le=1)
    label: str
    source: str = Field(description="Where the gold value comes from.")


class GoldSuite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str
    documents: str
    note: str | None = None
    items: list[GoldItem]
    sentiment: list[SentimentGold] = Field(default_factory=list)


def load_suite(path: Path) -> GoldSuite:
    return GoldSuite.model_validate(yaml.safe_load(Path(path).read_text("utf-8")))
