"""Build the multi-company earnings-call corpus used by the `earnings` gold suite.

Why: the seed documents cover one company (Calix), so they cannot test what a multi-company index must get
right: picking the right company's call among ~60 similar ones, ticker filters, comparisons and list questions
that need passages from several calls, and abstaining for companies or topics that are not there. Real
earnings calls are also spoken language: numbers are often spelled out ("four and a half percent"), and
the text has disfluencies and transcription gaps (<inaudible>), which a hand-made corpus would not have.

What: reads the plain-text rendering of the Rev.com Earnings-21/22 reference transcripts
(/work/shared/data/earnings21_22_transcripts/transcripts_plaintext.jsonl, CC BY-SA 4.0; see
eval/data/earnings/SOURCE.md) and writes eval/data/earnings/calls.jsonl, one call per line, in the fields
the `.jsonl` loader of `rag ingest` reads (id, title, tickers, date, doc_type, source_url, text) plus
company/sector/country/quarter. It keeps all 44 Earnings-21 calls and 16 Earnings-22 calls whose company we
can name with confidence (a spread of countries and sectors, two MTN Ghana annual calls of different years),
about 2.76 M characters in all. Only metadata is added, by hand in the tables below; `text` is copied unchanged.

`quarter` is the period the call reports, read from the call itself: "Q3 2020" for a calendar-year company,
"Q3 FY2020" where the company's fiscal year is not the calendar year and the call says "fiscal", "H1 2020" for
half-year results, "FY2021" for full-year results. `date` is given only where the call states its own date.

Usage (from the repository root; stdlib only):
    python eval/build_earnings_corpus.py [PATH_TO_transcripts_plaintext.jsonl]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT / ".." / "shared" / "data" / "earnings21_22_transcripts" / "transcripts_plaintext.jsonl"
OUT = ROOT / "eval" / "data" / "earnings" / "calls.jsonl"
SOURCE_URL = "https://github.com/revdotcom/speech-datasets"
MAX_CHARS = 3_000_000  # CI embeds the whole corpus

US = "United States"

# Earnings-21: file_id -> (company, ticker, quarter, country or None, date or None, note or None).
# The data has no tickers and some misspelled names; both are set here by hand. Sector comes from the data.
EARNINGS21: dict[str, tuple[str, str, str | None, str | None, str | None, str | None]] = {
    "4320211": ("Monro", "MNRO", "Q3 FY2020", US, None, None),
    "4330115": ("Culp", "CULP", "Q3 FY2020", US, None, None),
    "4341191": ("General Electric", "GE", "Q1 2020", US, None, None),
    "4344338": ("Danaher", "DHR", "Q1 2020", US, None, None),
    "4344866": ("Spire", "SR", "Q2 FY2020", US, None, None),
    "4346818": ("Ingersoll Rand", "IR", "Q1 2020", US, None, None),
    "4346923": ("Cementos Argos", "CEMARGOS", "Q1 2020", "Colombia", None, None),
    "4359732": ("Kuehne + Nagel", "KNIN", "H1 2020", "Switzerland", None, None),
    "4359971": ("Constellium", "CSTM", "Q2 2020", None, None, None),
    "4360366": ("Travelers", "TRV", "Q2 2020", US, "2020-07-23",
                "The operator gives the recording date as 'July 23rd, 202' (year cut off in the transcript)."),
    "4360674": ("NextEra Energy", "NEE", "Q2 2020", US, None, None),
    "4360717": ("FEMSA", "FMX", "Q2 2020", "Mexico", None, None),
    "4361631": ("Enagas", "ENG", "H1 2020", "Spain", None, None),
    "4363614": ("Banco Santander México", "BSMX", "Q2 2020", "Mexico", None,
                "The call is Banco Santander México's, not the Spanish parent's (the data names it 'Banco Santander')."),
    "4364366": ("Mosaic", "MOS", "Q2 2020", US, None, None),
    "4365024": ("Nexstar Media Group", "NXST", "Q2 2020", US, None, None),
    "4365948": ("GCP Applied Technologies", "GCP", "Q2 2020", US, None, None),
    "4366302": ("Healthcare Realty Trust", "HR", "Q2 2020", US, None, None),
    "4366429": ("Dentsply Sirona", "XRAY", "Q2 2020", US, None, None),
    "4366522": ("Aldeyra Therapeutics", "ALDX", "Q2 2020", US, None, None),
    "4366893": ("Earthstone Energy", "ESTE", "Q2 2020", US, "2020-08-06", None),
    "4367318": ("AcelRx Pharmaceuticals", "ACRX", "Q2 2020", US, None, None),
    "4367535": ("Affimed", "AFMD", "Q2 2020", None, None, None),
    "4368670": ("RWE", "RWE", "H1 2020", "Germany", None, None),
    "4374910": ("American Express", "AXP", None, US, None,
                "Not an earnings call: a fireside chat with American Express's head of Global Consumer Services at "
                "Autonomous's Future of Commerce Symposium (2020); the source lists it under quarter 3."),
    "4375653": ("Illumina", "ILMN", None, US, None,
                "Not an earnings call: Illumina's call on its definitive agreement to acquire GRAIL (2020); the "
                "source lists it under quarter 3."),
    "4382825": ("ConocoPhillips", "COP", "Q3 2020", US, None, None),
    "4383161": ("Pilgrim's Pride", "PPC", "Q3 2020", US, None, None),
    "4384198": ("The New Home Company", "NWHM", "Q3 2020", US, None, None),
    "4384683": ("ONE Gas", "OGS", "Q3 2020", US, None, None),
    "4384744": ("ADTRAN", "ADTN", "Q3 2020", US, None, None),
    "4384964": ("Eversource Energy", "ES", "Q3 2020", US, None, None),
    "4385072": ("SiTime", "SITM", "Q3 2020", US, "2020-11-04", None),
    "4385388": ("YETI", "YETI", "Q3 2020", US, None, None),
    "4385939": ("Hershey", "HSY", "Q3 2020", US, None, None),
    "4386541": ("Cumulus Media", "CMLS", "Q3 2020", US, None, None),
    "4387332": ("ZAGG", "ZAGG", "Q3 2020", US, None, None),
    "4387383": ("Clipper Realty", "CLPR", "Q3 2020", US, "2020-11-09", None),
    "4387865": ("Identiv", "INVE", "Q3 2020", US, None, None),
    "4389907": ("Phoenix New Media", "FENG", "Q3 2020", "China", None, None),
    "4392809": ("Lands' End", "LE", "Q3 FY2020", US, None, None),
    "4394084": ("Innovative Solutions and Support", "ISSC", "Q4 FY2020", US, None, None),
    "4397800": ("REV Group", "REVG", "Q4 FY2020", US, None, None),
    "4397829": ("Bed Bath & Beyond", "BBBY", "Q3 FY2020", US, None, None),
}

# Earnings-22 calls kept: file_id -> (short id, company as the operator or host names it, quarter, sector or None).
# Ticker and country come from the data.
EARNINGS22: dict[str, tuple[str, str, str, str | None]] = {
    "2020-03-0230487MTN-Ghana-2019-Annual-Results-Call": ("e22-mtngh-2019", "MTN Ghana", "FY2019", "Telecommunications"),
    "2020-Annual-Results-Call-Recording": ("e22-mtngh-2020", "MTN Ghana", "FY2020", "Telecommunications"),
    "4329526": ("e22-4329526", "LATAM Airlines Group", "Q4 2019", "Airlines"),
    "4420696": ("e22-4420696", "KB Financial Group", "Q1 2021", "Financial"),
    "4423872": ("e22-4423872", "Itau CorpBanca", "Q1 2021", "Financial"),
    "4430051": ("e22-4430051", "SK Telecom", "Q1 2021", "Telecommunications"),
    "4449269": ("e22-4449269", "Embraer", "Q2 2021", "Aerospace"),
    "4452058": ("e22-4452058", "Hepsiburada", "Q2 2021", "E-commerce"),
    "4462231": ("e22-4462231", "Texas Instruments", "Q3 2021", "Technology"),
    "4467071": ("e22-4467071", "Tecnoglass", "Q3 2021", "Industrial Goods"),
    "4475486": ("e22-4475486", "Trip.com Group", "Q3 2021", "Travel services"),
    "4482110": ("e22-4482110", "GasLog Partners", "Q4 2021", "Shipping"),
    "4482383": ("e22-4482383", "PointsBet Holdings", "Q2 FY2022", "Gambling"),
    "4482569": ("e22-4482569", "Dr. Reddy's Laboratories", "Q3 FY2022", "Healthcare"),
    "4483623": ("e22-4483623", "Exco Technologies", "Q1 FY2022", "Industrial Goods"),
    "4483633": ("e22-4483633", "Ferrari", "FY2021", "Automotive"),
}

def title_for(company: str, quarter: str | None) -> str:
    if quarter is None:
        # the two earnings21 files that are not earnings calls get a title that says what they are
        return {"American Express": "American Express at Autonomous's Future of Commerce Symposium (2020)",
                "Illumina": "Illumina call on its agreement to acquire GRAIL (2020)"}[company]
    if quarter.startswith("FY"):
        return f"{company} {quarter[2:]} full-year results call"
    if quarter.startswith("H1"):
        return f"{company} {quarter} results call"
    return f"{company} {quarter} earnings call"


def build(records: list[dict]) -> list[dict]:
    out: list[dict] = []
    by_file = {(r["dataset"], r["file_id"]): r for r in records}
    for file_id, (company, ticker, quarter, country, date, note) in EARNINGS21.items():
        r = by_file[("earnings21", file_id)]
        if quarter is not None:  # the data's quarter number must agree (a half-year call is listed as quarter 2)
            expected = "2" if quarter.startswith("H1") else quarter[1]
            assert expected == str(r["quarter"]), (file_id, quarter, r["quarter"])
        doc = {"id": f"e21-{file_id}", "title": title_for(company, quarter), "tickers": [ticker],
               "company": company, "sector": r["sector"]}
        if country:
            doc["country"] = country
        if quarter:
            doc["quarter"] = quarter
        doc["doc_type"] = "earnings_call"
        doc["source_url"] = SOURCE_URL
        if date:
            doc["date"] = date
        if note:
            doc["notes"] = note
        doc["source_file"] = f"earnings21/transcripts/nlp_references/{file_id}.nlp"
        doc["text"] = r["text"]
        out.append(doc)
    for file_id, (short_id, company, quarter, sector) in EARNINGS22.items():
        r = by_file[("earnings22", file_id)]
        doc = {"id": short_id, "title": title_for(company, quarter), "tickers": [r["ticker"]],
               "company": company}
        if sector:
            doc["sector"] = sector
        doc["country"] = r["country"]
        doc["quarter"] = quarter
        doc["doc_type"] = "earnings_call"
        doc["source_url"] = SOURCE_URL
        doc["source_file"] = f"earnings22/transcripts/nlp_references/{file_id}.nlp"
        doc["text"] = r["text"]
        out.append(doc)
    return out


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    records = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    docs = build(records)
    ids = [d["id"] for d in docs]
    assert len(ids) == len(set(ids)), "duplicate ids"
    total = sum(len(d["text"]) for d in docs)
    assert total <= MAX_CHARS, f"corpus too large: {total} chars"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    tmp.replace(OUT)
    companies = {d["company"] for d in docs}
    print(f"wrote {OUT.relative_to(ROOT)}: {len(docs)} calls, {len(companies)} companies, {total:,} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
