"""Financial PhraseBank v1.0 (Malo et al., 2014; CC BY-NC-SA 3.0, see eval/data/financial_phrasebank/SOURCE.md).

There is no official split, so one is derived from a hash of each sentence's text: stable across machines and
releases, and the same sentence lands in the same split in every agreement subset (they are nested). The
offline sentiment head is trained on `train`, its regularisation picked on `dev`, and only `test` is reported."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from rag.settings import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT / "eval" / "data" / "financial_phrasebank"
LABELS = ("negative", "neutral", "positive")
Split = Literal["train", "dev", "test"]


class LabelledSentence(BaseModel):
    text: str
    label: str
    all_agree: bool
    split: Split


def split_of(text: str) -> Split:
    bucket = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "train" if bucket < 70 else "dev" if bucket < 80 else "test"


def _read(path: Path, encoding: str) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding=encoding).splitlines():
        text, sep, label = line.rpartition("@")
        if sep and label.strip() in LABELS:
            rows.append((text.strip(), label.strip()))
    return rows


def load(data_dir: Path = DATA_DIR) -> list[LabelledSentence]:
    """Every 50%-agreement sentence once (duplicates and conflicting labels dropped), flagged if all annotators
    agreed. The 50Agree file is latin-1, AllAgree is UTF-8 (SOURCE.md)."""
    all_agree = {text for text, _ in _read(data_dir / "Sentences_AllAgree.txt", "utf-8")}
    labels: dict[str, set[str]] = {}
    for text, label in _read(data_dir / "Sentences_50Agree.txt", "latin-1"):
        labels.setdefault(text, set()).add(label)
    return [
        LabelledSentence(text=text, label=next(iter(found)), all_agree=text in all_agree, split=split_of(text))
        for text, found in labels.items()
        if len(found) == 1
    ]
