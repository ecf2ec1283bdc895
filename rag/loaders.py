"""File -> Document, one function per format. Metadata comes from a `<file>.meta.json` sidecar,
YAML front matter (.md), or the record's own fields (.jsonl), with fallbacks from the file itself."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from rag.errors import BadInputError, DocumentTooLargeError
from rag.models import DOC_ID_PATTERN, Document, PageSpan, is_safe_id, safe_id

SIDECAR_SUFFIX = ".meta.json"
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_META_FIELDS = {"id", "title", "tickers", "ticker", "date", "source_url", "url", "doc_type"}


class LoadFailure(BaseModel):
    path: str
    error: str


def _decode(data: bytes, path: Path) -> str:
    if not data.strip():
        raise BadInputError(f"{path}: file is empty")
    if b"\0" in data[:8192]:
        raise BadInputError(f"{path}: looks binary (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc


def _normalise_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Metadata from sidecars, front matter, records or an upload's `metadata` field, checked strictly: a value of
    the wrong type is a BadInputError naming the field, never coerced (`[null, 1]` is not the tickers NONE, 1)."""
    out: dict[str, Any] = {k: v for k, v in meta.items() if k in _META_FIELDS}
    if "ticker" in out:
        out.setdefault("tickers", out.pop("ticker"))
    if isinstance(out.get("tickers"), str):
        out["tickers"] = [t.strip() for t in re.split(r"[,\s]+", out["tickers"]) if t.strip()]
    if "tickers" in out:
        tickers = out["tickers"]
        if tickers is None:
            tickers = []
        if not isinstance(tickers, list) or not all(isinstance(t, str) and t.strip() for t in tickers):
            raise BadInputError("metadata 'tickers' must be a list of non-empty strings or a comma-separated string")
        out["tickers"] = [t.strip().upper() for t in tickers]
    if "url" in out:
        out.setdefault("source_url", out.pop("url"))
    for field in ("title", "source_url", "doc_type"):
        if out.get(field) is not None and not isinstance(out[field], str):
            raise BadInputError(f"metadata {field!r} must be a string")
    if out.get("id") is not None:
        doc_id = out["id"]
        # Integer ids (row numbers in a feed) are common and unambiguous; anything else must be a string.
        if isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = str(doc_id)
        if not isinstance(doc_id, str) or not is_safe_id(doc_id):
            raise BadInputError(f"metadata 'id' must be a string matching {DOC_ID_PATTERN} (letters, digits, "
                                ". _ : -), got {str(doc_id)[:80]!r}")
        out["id"] = doc_id
    rest = {k: v for k, v in meta.items() if k not in _META_FIELDS and k not in ("text", "metadata")}
    nested = meta.get("metadata")
    out["metadata"] = {**nested, **rest} if isinstance(nested, dict) else rest
    return out


def merge_upload_fields(fields: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """An upload's document fields, from the top level or from inside its `metadata` object (where users put
    them too: `{"metadata": {"id": ..., "tickers": [...]}}`). Both places are honoured; the same field in both
    with different values is an error, never a silent pick."""
    nested = _normalise_meta(metadata)
    top = {k: v for k, v in _normalise_meta(fields).items() if v not in (None, [], {})}
    for key in sorted((nested.keys() & top.keys()) - {"metadata"}):
        if nested[key] != top[key]:
            raise BadInputError(f"{key!r} is given both at the top level and in 'metadata', with different values")
    return {**nested, **top, "metadata": {**nested["metadata"], **top.get("metadata", {})}}


def _first_line_title(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return ""


def _build(path: Path, text: str, meta: dict[str, Any], **extra: Any) -> Document:
    try:
        normalised = _normalise_meta(meta)
    except BadInputError as exc:
        raise BadInputError(f"{path.name}: {exc}") from None
    fields = {"id": safe_id(path.stem), "title": _first_line_title(text), "path": str(path), **normalised}
    fields.update(extra)
    if not text.strip():
        raise BadInputError(f"{path}: no text content")
    try:
        return Document(text=text, **fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadInputError(f"{path.name}: bad metadata: {where}: {first['msg']}") from None


def _sidecar(path: Path) -> dict[str, Any]:
    side = path.with_name(path.name + SIDECAR_SUFFIX)
    if not side.exists():
        return {}
    try:
        meta = json.loads(side.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{side}: invalid JSON sidecar: {exc}") from exc
    if not isinstance(meta, dict):
        raise BadInputError(f"{side}: sidecar must be a JSON object")
    return meta


def load_text(path: Path, data: bytes, meta: dict[str, Any]) -> list[Document]:
    return [_build(path, _decode(data, path), meta)]


def load_markdown(path: Path, data: bytes, meta: dict[str, Any]) -> list[Document]:
    text = _decode(data, path)
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            front = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as exc:
            # One line: YAML errors quote the offending lines with carets.
            raise BadInputError(f"{path}: invalid front matter: {' '.join(str(exc).split())}") from None
        if isinstance(front, dict):
            meta = {**front, **meta}
        # Blank out the front matter instead of cutting it so offsets still index the file as stored.
        text = " " * match.end() + text[match.end():]
    return [_build(path, text, meta)]


def load_html(path: Path, data: bytes, meta: dict[str, Any]) -> list[Document]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(data, path), "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    title_tag = BeautifulSoup(data, "html.parser").title
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in soup.get_text("\n").splitlines()]
    text = "\n".join(line for line in lines if line)
    meta = dict(meta)
    if title_tag and title_tag.string and "title" not in meta:
        meta["title"] = title_tag.string.strip()
    return [_build(path, text, meta)]


def load_pdf(path: Path, data: bytes, meta: dict[str, Any]) -> list[Document]:
    import io

    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        page_texts = [page.extract_text() or "" for page in reader.pages]
    except LimitReachedError as exc:
        # pypdf's own bounds on decompressed streams, operators and page trees: the file is a decompression bomb
        # or pathological, not a document we should try harder on.
        raise BadInputError(f"{path.name}: PDF exceeds a safety limit ({exc})") from None
    except (PdfReadError, ValueError, KeyError) as exc:
        raise BadInputError(f"{path.name}: unreadable PDF: {exc}") from None
    except (RecursionError, MemoryError):
        raise BadInputError(f"{path.name}: PDF structure is too deep or too large to read") from None
    except Exception as exc:  # noqa: BLE001  # malformed PDFs raise anything from pypdf's internals
        raise BadInputError(f"{path.name}: unreadable PDF ({type(exc).__name__})") from None
    parts: list[str] = []
    pages: list[PageSpan] = []
    offset = 0
    for number, page_text in enumerate(page_texts, start=1):
        pages.append(PageSpan(page=number, start=offset, end=offset + len(page_text)))
        parts.append(page_text)
        offset += len(page_text) + 2
    text = "\n\n".join(parts)
    if not text.strip():
        raise BadInputError(f"{path}: PDF has no text layer (scanned?)")
    return [_build(path, text, meta, pages=pages)]


def load_jsonl(path: Path, data: bytes, meta: dict[str, Any]) -> list[Document]:
    docs = []
    for lineno, line in enumerate(_decode(data, path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from exc
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise BadInputError(f"{path}:{lineno}: each line needs a string field 'text'")
        fields = {**{k: v for k, v in meta.items() if k != "id"}, "id": f"{safe_id(path.stem)}-{lineno}", **record}
        try:
            docs.append(_build(path, record["text"], fields))
        except BadInputError as exc:
            raise BadInputError(f"{path.name}:{lineno}: {str(exc).removeprefix(path.name + ': ')}") from None
    if not docs:
        raise BadInputError(f"{path}: no records")
    return docs


LOADERS: dict[str, Callable[[Path, bytes, dict[str, Any]], list[Document]]] = {
    ".txt": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".jsonl": load_jsonl,
}


def load_file(path: Path, max_bytes: int, data: bytes | None = None,
              meta: dict[str, Any] | None = None) -> list[Document]:
    """Load a file, or uploaded bytes named `path`, into Documents; raises BadInputError.
    Metadata: `meta` over the file's sidecar (files on disk only) over what the file itself says."""
    if data is None and not path.exists():
        raise BadInputError(f"{path}: no such file or folder")
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise BadInputError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
                            f"supported: {', '.join(sorted(LOADERS))}")
    if data is None:
        if not path.is_file():
            raise BadInputError(f"{path}: no such file")
        size = path.stat().st_size
        if size > max_bytes:
            raise DocumentTooLargeError(f"{path}: {size} bytes exceeds the limit of {max_bytes}")
        data = path.read_bytes()
        meta = {**_sidecar(path), **(meta or {})}
    elif len(data) > max_bytes:
        raise DocumentTooLargeError(f"{path}: {len(data)} bytes exceeds the limit of {max_bytes}")
    return loader(path, data, meta or {})


def iter_files(paths: list[Path]) -> Iterator[Path]:
    """Expand folders (recursively, sorted); sidecars and hidden files are metadata, not documents."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not child.name.endswith(SIDECAR_SUFFIX) and not any(
                    part.startswith(".") for part in child.relative_to(path).parts
                ):
                    yield child
        else:
            yield path
