"""URL -> Documents: download a page or file over HTTP(S) and hand it to the loader its content type names.
Web pages go through trafilatura's main-text extraction, so navigation, footers and cookie banners are not indexed
(and never cited); the document keeps the URL it was read from as `source_url`."""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from rag.errors import BadInputError, DocumentTooLargeError
from rag.loaders import LOADERS, load_file
from rag.models import Document, safe_id
from rag.settings import Settings

# Content types we read, as the file suffix whose loader handles them. Anything else falls back to the URL's own
# suffix (servers often send application/octet-stream for PDFs).
_SUFFIX_OF_TYPE = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "application/pdf": ".pdf",
    "application/x-ndjson": ".jsonl",
    "application/jsonl": ".jsonl",
}
_REDIRECTS = {301, 302, 303, 307, 308}


def is_url(source: str) -> bool:
    """A command-line source with a scheme ("https://…") is a URL; anything else is a path."""
    return "://" in source


def _refuse_private(url: str, host: str) -> None:
    """SSRF guard for the HTTP API: every address the host resolves to must be public. (A DNS answer that changes
    between this check and the connection is not covered; the guard is against plain intranet addresses.)"""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise BadInputError(f"{url}: cannot resolve host {host!r} ({exc.strerror}); offline?") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise BadInputError(f"{url}: refusing to fetch {host} ({address} is not a public address); an operator "
                                "can allow it with RAG_SERVER__FETCH_PRIVATE_URLS=true")


def _check_url(url: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BadInputError(f"{url}: only http:// and https:// URLs can be fetched")
    if not parts.hostname:
        raise BadInputError(f"{url}: URL has no host")
    if not allow_private:
        _refuse_private(url, parts.hostname)


@dataclass(frozen=True)
class Download:
    url: str  # after redirects
    mime: str
    charset: str | None
    body: bytes


def download(url: str, settings: Settings, allow_private: bool) -> Download:
    """Redirects are followed by hand so each hop is checked like the first;
    the body is read against both the size limit and a whole-download deadline (a server dripping bytes would
    otherwise never hit httpx's per-read timeout)."""
    deadline = time.monotonic() + settings.fetch.timeout_s
    headers = {"User-Agent": settings.fetch.user_agent}
    limit = settings.max_file_bytes
    try:
        with httpx.Client(timeout=settings.fetch.timeout_s, follow_redirects=False, headers=headers,
                          trust_env=False) as client:
            for _ in range(settings.fetch.max_redirects + 1):
                _check_url(url, allow_private)
                with client.stream("GET", url) as response:
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise BadInputError(f"{url}: the server answered HTTP {response.status_code}")
                    declared = int(response.headers.get("content-length") or 0)
                    if declared > limit:
                        raise DocumentTooLargeError(f"{url}: {declared} bytes exceeds the limit of {limit}")
                    body = bytearray()
                    for piece in response.iter_bytes():
                        body.extend(piece)
                        if len(body) > limit:
                            raise DocumentTooLargeError(f"{url}: more than the limit of {limit} bytes")
                        if time.monotonic() > deadline:
                            raise BadInputError(f"{url}: download took longer than {settings.fetch.timeout_s:g}s "
                                                "(RAG_FETCH__TIMEOUT_S)")
                    mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    return Download(url, mime, response.charset_encoding, bytes(body))
            raise BadInputError(f"{url}: more than {settings.fetch.max_redirects} redirects")
    except httpx.TimeoutException:
        raise BadInputError(f"{url}: no answer within {settings.fetch.timeout_s:g}s (RAG_FETCH__TIMEOUT_S)") from None
    except httpx.HTTPError as exc:
        raise BadInputError(f"{url}: could not fetch ({type(exc).__name__}: {exc}); offline?") from None


def _as_utf8(page: Download) -> bytes:
    """Text loaders read UTF-8; a page served as latin-1 (declared in its Content-Type) is re-encoded first."""
    if not page.charset or page.charset.lower().replace("-", "") == "utf8":
        return page.body
    try:
        return page.body.decode(page.charset).encode("utf-8")
    except (LookupError, UnicodeDecodeError):
        return page.body  # the loader then names the decoding problem


def _main_text(url: str, html: bytes) -> tuple[str, dict[str, Any]] | None:
    import trafilatura

    extracted = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                            include_tables=True)
    if extracted is None or not (extracted.text or "").strip():
        return None
    meta: dict[str, Any] = {}
    if extracted.title:
        meta["title"] = extracted.title
    if extracted.date:
        meta["date"] = extracted.date
    return extracted.text, meta


def fetch_documents(url: str, settings: Settings, meta: dict[str, Any] | None = None,
                    allow_private: bool = True) -> list[Document]:
    """Documents read from `url`; `meta` (id, title, tickers, ...) wins over what the page says about itself.
    Raises BadInputError (unreachable, HTTP error, unsupported type) or DocumentTooLargeError."""
    page = download(url, settings, allow_private)
    final_url = page.url
    parts = urlsplit(final_url)
    suffix = _SUFFIX_OF_TYPE.get(page.mime) or Path(parts.path).suffix.lower()
    if suffix not in LOADERS:
        raise BadInputError(f"{final_url}: unsupported content type {page.mime or '(none)'!r}; supported: HTML, "
                            "text, Markdown, PDF, JSON lines")
    name = safe_id(f"{parts.netloc}{parts.path}{'?' + parts.query if parts.query else ''}".rstrip("/"))
    fields: dict[str, Any] = {"id": name, "source_url": final_url}
    if final_url != url:
        fields["requested_url"] = url
    body = page.body if suffix == ".pdf" else _as_utf8(page)
    if suffix == ".html":
        extracted = _main_text(final_url, body)
        if extracted is not None:
            text, page_meta = extracted
            return load_file(Path(name + ".txt"), settings.max_file_bytes, data=text.encode("utf-8"),
                             meta={**fields, **page_meta, **(meta or {})})
    return load_file(Path(name + suffix), settings.max_file_bytes, data=body, meta={**fields, **(meta or {})})
