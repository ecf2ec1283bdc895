"""URL ingestion against a real HTTP server on loopback: `rag ingest URL`, `Library.add_paths` with URLs and
`POST /v1/documents {"url": ...}` (refused for private addresses unless the operator allows them)."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.errors import BadInputError, DocumentTooLargeError
from rag.library import Library
from rag.settings import FetchSettings
from tests.conftest import AUTH, client_for
from tests.pdf_maker import make_pdf

ARTICLE = """<!doctype html><html><head><title>Acme Q3 results | Example Research</title>
<meta property="article:published_time" content="2025-10-14"></head><body>
<nav><a href="/">Home</a> | <a href="/markets">Markets</a> | Subscribe to our newsletter today</nav>
<article><h1>Acme Q3 results</h1>
<p>Acme Corp reported third-quarter revenue of $88 million, up 4% from a year earlier, as demand for its
industrial sensors held up better than management had expected in July.</p>
<p>The company raised its full-year revenue outlook to a range of $350 million to $360 million and said its
order backlog reached a record $410 million at the end of the quarter.</p>
<p>Gross margin expanded 120 basis points to 41.5%, helped by lower freight costs and better pricing.</p>
</article>
<footer>Cookie settings. Copyright Example Research. All rights reserved.</footer></body></html>"""

PAGES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/acme-q3.html": (200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE.encode()),
    "/old-link": (302, {"Location": "/acme-q3.html"}, b""),
    "/loop": (302, {"Location": "/loop"}, b""),
    "/note": (200, {"Content-Type": "text/plain; charset=iso-8859-1"},
              "Globex: the Zürich plant restarted in May; backlog is £5 billion.".encode("latin-1")),
    "/report": (200, {"Content-Type": "application/pdf"}, make_pdf(["Initech revenue was 12 million in Q2."])),
    "/logo.png": (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n" + b"\0" * 64),
    "/gone": (404, {"Content-Type": "text/plain"}, b"not here"),
    "/huge": (200, {"Content-Type": "text/plain"}, b"word " * 20_000),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802  # http.server's naming
        if self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for _ in range(40):  # never finishes within the test's 1 s deadline, each piece well inside it
                self.wfile.write(b"slow ")
                self.wfile.flush()
                time.sleep(0.1)
            return
        status, headers, body = PAGES.get(self.path, (404, {}, b""))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """The fetcher hangs up on purpose (a 404, a body over the limit, a deadline): no traceback for that."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_web_page_is_indexed_as_its_main_text_with_its_url(empty_library: Library, site: str) -> None:
    url = f"{site}/acme-q3.html"
    report = empty_library.add_paths([url])
    assert report.ok and len(report.added) == 1
    doc = empty_library.get_document(report.added[0])
    assert doc.source_url == url and doc.title.startswith("Acme Q3 results") and str(doc.date) == "2025-10-14"
    assert "record $410 million" in doc.text and "Gross margin expanded 120 basis points" in doc.text
    assert "Subscribe" not in doc.text and "Cookie settings" not in doc.text  # boilerplate left out

    answer = empty_library.ask("What was Acme's order backlog at the end of the quarter?")
    assert "$410 million" in answer.answer and answer.citations
    assert answer.citations[0].source_url == url
    assert doc.text[answer.citations[0].start:answer.citations[0].end] == answer.citations[0].quote

    assert empty_library.add_paths([url]).unchanged == report.added  # same page again: nothing re-embedded


def test_redirects_text_charsets_and_pdfs(empty_library: Library, site: str) -> None:
    report = empty_library.add_paths([f"{site}/old-link", f"{site}/note", f"{site}/report"])
    assert report.ok and len(report.added) == 3, report.failed
    docs = {d.source_url: d for d in (empty_library.get_document(i) for i in report.added)}
    moved = docs[f"{site}/acme-q3.html"]
    assert moved.metadata["requested_url"] == f"{site}/old-link"
    assert "Zürich plant restarted" in docs[f"{site}/note"].text and "£5 billion" in docs[f"{site}/note"].text
    assert "Initech revenue was 12 million" in docs[f"{site}/report"].text


@pytest.mark.parametrize(("path", "message"), [
    ("/gone", "HTTP 404"),
    ("/logo.png", "unsupported content type 'image/png'"),
    ("/loop", "more than 5 redirects"),
])
def test_unusable_urls_are_reported_and_the_rest_still_go_in(empty_library: Library, site: str, path: str,
                                                           message: str) -> None:
    report = empty_library.add_paths([f"{site}{path}", f"{site}/note"])
    assert len(report.added) == 1 and [f.path for f in report.failed] == [f"{site}{path}"]
    assert message in report.failed[0].error


def test_limits_offline_and_schemes(empty_library: Library, site: str) -> None:
    small = empty_library.settings.model_copy(update={"max_file_bytes": 50_000,
                                                      "fetch": FetchSettings(timeout_s=1.0)})
    lib = Library(small, embedder=empty_library.embedder)
    with pytest.raises(DocumentTooLargeError, match="limit of 50000"):
        lib.add_url(f"{site}/huge", allow_private=True)
    started = time.monotonic()
    with pytest.raises(BadInputError, match="longer than 1s"):
        lib.add_url(f"{site}/drip", allow_private=True)
    assert time.monotonic() - started < 3  # the deadline bounds the whole download, not each read
    with pytest.raises(BadInputError, match="could not fetch .*offline"):
        lib.add_url(f"http://127.0.0.1:{_closed_port()}/x", allow_private=True)
    failed = lib.add_paths(["ftp://example.com/a.txt"]).failed
    assert "only http:// and https://" in failed[0].error


def test_cli_ingests_urls_and_exits_nonzero_when_one_fails(tmp_path, site: str) -> None:
    index = str(tmp_path / "index")
    result = CliRunner().invoke(app, ["ingest", f"{site}/acme-q3.html", f"{site}/gone", "--index", index])
    assert result.exit_code == 1 and "added 1" in result.output and "HTTP 404" in result.output
    docs = CliRunner().invoke(app, ["docs", "--index", index, "--json"])
    assert [d["source_url"] for d in json.loads(docs.output)] == [f"{site}/acme-q3.html"]


def test_http_url_upload_refuses_private_addresses_unless_allowed(seeded_copy: Library, site: str) -> None:
    body = {"url": f"{site}/acme-q3.html", "tickers": ["ACME"]}
    with client_for(seeded_copy) as client:
        refused = client.post("/v1/documents", json=body, headers=AUTH)
        assert refused.status_code == 400 and "RAG_SERVER__FETCH_PRIVATE_URLS" in refused.json()["error"]["message"]
        both = client.post("/v1/documents", json={**body, "text": "x"}, headers=AUTH)
        assert both.status_code == 400 and "exactly one of 'text' or 'url'" in both.json()["error"]["message"]
    with client_for(seeded_copy, fetch_private_urls=True) as client:
        r = client.post("/v1/documents", json={**body, "metadata": {"id": "acme-q3"}}, headers=AUTH)
        assert r.status_code == 201 and r.json()["added"] == ["acme-q3"]
        doc = client.get("/v1/documents/acme-q3").json()
        assert doc["source_url"] == body["url"] and doc["tickers"] == ["ACME"]
        gone = client.post("/v1/documents", json={"url": f"{site}/gone"}, headers=AUTH)
        assert gone.status_code == 400 and "HTTP 404" in gone.json()["error"]["message"]


def test_document_fields_inside_metadata_are_honoured_or_refused(seeded_copy: Library) -> None:
    with client_for(seeded_copy) as client:
        text = "Acme Corp reported Q1 revenue of $70 million."
        r = client.post("/v1/documents", json={"text": text, "metadata": {"id": "acme-q1", "tickers": ["acme"],
                                                                            "analyst": "J. Doe"}}, headers=AUTH)
        assert r.status_code == 201 and r.json()["added"] == ["acme-q1"]
        doc = client.get("/v1/documents/acme-q1").json()
        assert doc["tickers"] == ["ACME"] and doc["metadata"] == {"analyst": "J. Doe"}
        clash = client.post("/v1/documents", json={"text": text, "id": "a", "metadata": {"id": "b"}}, headers=AUTH)
        assert clash.status_code == 400
        assert "both at the top level and in 'metadata'" in clash.json()["error"]["message"]
        bad = client.post("/v1/documents", json={"text": text, "metadata": {"tickers": 5}}, headers=AUTH)
        assert bad.status_code == 400 and "tickers" in bad.json()["error"]["message"]
