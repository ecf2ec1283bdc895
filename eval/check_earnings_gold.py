"""Check eval/gold/earnings.yaml against eval/data/earnings/calls.jsonl (stdlib + pyyaml).

The gold questions are written by hand, so this checks what a hand can get wrong:
- ids are unique, lowercase and stable-looking; every item has a known `kind` and a question;
- every gold `doc` exists and every `evidence` is a verbatim substring of that document's text (<= 120 chars);
- every `facts` regex compiles and matches the *sentence* around the evidence (from the previous sentence end to
  the next one) of at least one gold entry of the item, and every gold entry's sentence matches at least one fact
  (so each side of a comparison is really needed). For `list` items a company-name fact may instead match the
  company name or title of a gold document (the answer names the companies; their sentences rarely do);
- `companies` are tickers of calls in the corpus and every gold document belongs to one of them (and each of them
  has a gold document), except for abstain items;
- `abstain-absent-company` items have `companies: []`, an `absent_company` that is not a company of the corpus,
  and a question that names no company of the corpus;
- `abstain-absent-topic` items name one corpus company and an `absent` regex that matches none of its calls;
- `followup` items carry a `history` of user/assistant turns.
Prints the number of items per kind and of companies, and exits 1 on any error.

    python eval/check_earnings_gold.py [GOLD_YAML] [CALLS_JSONL]
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "eval" / "gold" / "earnings.yaml"
CALLS = ROOT / "eval" / "data" / "earnings" / "calls.jsonl"

KINDS = ("figure", "spelled-number", "guidance", "actual-vs-guidance", "comparison", "list", "followup",
         "qualitative", "abstain-absent-company", "abstain-absent-topic")
ABSTAIN_KINDS = ("abstain-absent-company", "abstain-absent-topic")
MAX_EVIDENCE = 120
# sentence ends: . ? ! followed by whitespace (so "2.2" and "ti.com" do not end a sentence), or a line break
_END = re.compile(r"[.?!](?=\s)|\n")
# minimums asked of the suite
MIN_ITEMS, MIN_COMPANIES, MIN_ABSTAIN, MIN_SPELLED = 85, 25, 14, 6


def sentence_around(text: str, start: int, end: int) -> str:
    """The text from the end of the sentence before `start` to the end of the sentence holding `end`."""
    left = 0
    for m in _END.finditer(text, 0, start):
        left = m.end()
    m = _END.search(text, end)
    right = m.end() if m else len(text)
    return text[left:right].strip()


def load_calls(path: Path) -> dict[str, dict]:
    docs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            docs[d["id"]] = d
    return docs


def check(gold: dict, docs: dict[str, dict]) -> tuple[list[str], Counter, set[str]]:
    errors: list[str] = []
    kinds: Counter = Counter()
    used_companies: set[str] = set()
    tickers = {t: d for d in docs.values() for t in d["tickers"]}
    companies_of = {}  # ticker -> company name
    for d in docs.values():
        for t in d["tickers"]:
            companies_of[t] = d["company"]
    names = {d["company"] for d in docs.values()}

    if gold.get("suite") != "earnings":
        errors.append("suite must be 'earnings'")
    items = gold.get("items") or []
    seen: set[str] = set()
    for item in items:
        iid = item.get("id", "<no id>")
        err = lambda msg: errors.append(f"{iid}: {msg}")  # noqa: E731
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", str(iid)):
            err("id must be lowercase letters, digits and dashes")
        if iid in seen:
            err("duplicate id")
        seen.add(iid)
        kind = item.get("kind")
        if kind not in KINDS:
            err(f"unknown kind {kind!r}")
            continue
        kinds[kind] += 1
        if not str(item.get("question", "")).strip():
            err("no question")
        companies = item.get("companies")
        if not isinstance(companies, list):
            err("companies must be a list")
            companies = []

        if kind == "followup":
            history = item.get("history")
            if not history or not all(isinstance(h, dict) and h.get("role") in ("user", "assistant")
                                      and str(h.get("content", "")).strip() for h in history):
                err("followup needs a history of {role: user|assistant, content} turns")

        if kind in ABSTAIN_KINDS:
            if item.get("abstain") is not True:
                err("abstain items need abstain: true")
            if item.get("gold") or item.get("facts"):
                err("abstain items have no gold/facts")
        if kind == "abstain-absent-company":
            if companies:
                err("absent-company items must have companies: []")
            absent = str(item.get("absent_company", "")).strip()
            if not absent:
                err("absent-company items need absent_company")
            elif any(absent.lower() in n.lower() or n.lower() in absent.lower() for n in names):
                err(f"absent_company {absent!r} is a company of the corpus")
            q = item.get("question", "")
            for n in names:
                if re.search(rf"\b{re.escape(n)}\b", q, re.I):
                    err(f"question names corpus company {n!r}")
            for t in tickers:
                if len(t) >= 2 and re.search(rf"\b{re.escape(t)}\b", q):
                    err(f"question names corpus ticker {t!r}")
            continue
        if kind == "abstain-absent-topic":
            if len(companies) != 1 or companies[0] not in tickers:
                err("absent-topic items name exactly one corpus company")
                continue
            used_companies.update(companies)
            try:
                absent_re = re.compile(item.get("absent", ""), re.I)
            except re.error as exc:
                err(f"bad absent regex: {exc}")
                continue
            if not item.get("absent"):
                err("absent-topic items need an `absent` regex")
            for d in docs.values():
                if companies[0] in d["tickers"]:
                    m = absent_re.search(d["text"])
                    if m:
                        err(f"absent topic found in {d['id']}: ...{d['text'][max(0, m.start() - 60):m.end() + 60]}...")
            continue

        # answerable items
        for t in companies:
            if t not in tickers:
                err(f"ticker {t!r} has no call in the corpus")
        used_companies.update(companies)
        facts = item.get("facts") or []
        gold_entries = item.get("gold") or []
        if not facts:
            err("no facts")
        if not gold_entries:
            err("no gold entries")
        compiled = []
        for f in facts:
            try:
                compiled.append((f, re.compile(f, re.I)))
            except re.error as exc:
                err(f"bad fact regex {f!r}: {exc}")
        sentences: list[tuple[dict, str]] = []
        for g in gold_entries:
            doc = docs.get(g.get("doc"))
            if doc is None:
                err(f"gold doc {g.get('doc')!r} not in the corpus")
                continue
            if not any(t in companies for t in doc["tickers"]):
                err(f"gold doc {doc['id']} ({doc['company']}) is not one of companies {companies}")
            ev = g.get("evidence", "")
            if not ev or len(ev) > MAX_EVIDENCE:
                err(f"evidence must be 1..{MAX_EVIDENCE} chars: {ev!r}")
            pos = doc["text"].find(ev) if ev else -1
            if pos < 0:
                err(f"evidence not verbatim in {doc['id']}: {ev!r}")
                continue
            sentences.append((doc, sentence_around(doc["text"], pos, pos + len(ev))))
        for t in companies:
            if not any(t in doc["tickers"] for doc, _ in sentences):
                err(f"company {t} has no gold entry")

        def fact_hits(rx: re.Pattern, doc: dict, sent: str) -> bool:
            if rx.search(sent):
                return True
            return kind == "list" and bool(rx.search(doc["company"]) or rx.search(doc["title"]))

        for f, rx in compiled:
            if sentences and not any(fact_hits(rx, doc, s) for doc, s in sentences):
                err(f"fact {f!r} matches no gold sentence: {[s for _, s in sentences]}")
        for doc, s in sentences:
            if compiled and not any(fact_hits(rx, doc, s) for _, rx in compiled):
                err(f"gold sentence in {doc['id']} matches no fact: {s!r}")
    return errors, kinds, used_companies


def main(argv: list[str]) -> int:
    gold_path = Path(argv[1]) if len(argv) > 1 else GOLD
    calls_path = Path(argv[2]) if len(argv) > 2 else CALLS
    gold = yaml.safe_load(gold_path.read_text(encoding="utf-8"))
    docs = load_calls(calls_path)
    errors, kinds, companies = check(gold, docs)
    total = sum(kinds.values())
    abstain = sum(kinds[k] for k in ABSTAIN_KINDS)
    if total < MIN_ITEMS:
        errors.append(f"only {total} items (want >= {MIN_ITEMS})")
    if len(companies) < MIN_COMPANIES:
        errors.append(f"only {len(companies)} companies (want >= {MIN_COMPANIES})")
    if abstain < MIN_ABSTAIN:
        errors.append(f"only {abstain} abstain items (want >= {MIN_ABSTAIN})")
    if kinds["spelled-number"] < MIN_SPELLED:
        errors.append(f"only {kinds['spelled-number']} spelled-number items (want >= {MIN_SPELLED})")
    for e in errors:
        print("ERROR", e)
    print(f"{gold_path.relative_to(ROOT) if gold_path.is_relative_to(ROOT) else gold_path}: {total} items "
          f"over {len(docs)} calls ({sum(len(d['text']) for d in docs.values()):,} chars)")
    for k in KINDS:
        print(f"  {k:24s} {kinds[k]}")
    print(f"  companies: {len(companies)} ({', '.join(sorted(companies))})")
    print("OK" if not errors else f"{len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
