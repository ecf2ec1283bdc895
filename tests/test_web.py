"""What a browser gets: API docs served from the package (no CDN)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from rag.library import Library
from tests.conftest import client_for

_URL_ATTR = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""")
_ABSOLUTE = re.compile(r"""https?://|//[a-z]""", re.IGNORECASE)


@pytest.fixture(scope="module")
def client(seeded: Library):
    with client_for(seeded) as c:
        yield c


def _page_urls(client: TestClient, path: str) -> list[str]:
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    # No absolute URL anywhere in the page: not in an attribute, not in an inline script.
    assert not _ABSOLUTE.search(r.text), f"{path} refers outside the app: {_ABSOLUTE.findall(r.text)}"
    js_urls = re.findall(r"""url:\s*['"]([^'"]+)['"]""", r.text)  # Swagger UI's spec URL is set in a script
    return _URL_ATTR.findall(r.text) + js_urls


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_load_only_files_of_the_app(client: TestClient, path: str) -> None:
    urls = _page_urls(client, path)
    assert "/openapi.json" in urls and any(u.endswith(".js") for u in urls)
    for url in urls:
        assert url.startswith("/"), url
        r = client.get(url)
        assert r.status_code == 200 and len(r.content) > 100, url
    if path == "/docs":
        assert '"validatorUrl": null' in client.get(path).text  # no spec URL sent to validator.swagger.io


def test_static_files_stay_inside_their_folder(client: TestClient) -> None:
    assert client.get("/static/../settings.py").status_code == 404
    assert client.get("/static/%2e%2e/settings.py").status_code == 404
