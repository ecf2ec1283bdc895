"""What a browser gets: API docs served from the package (no CDN), the chat page and its files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from rag.api.app import create_app
from rag.library import Library
from rag.qa import run_sync
from rag.settings import ServerSettings
from tests.conftest import KEY, SEED_MAP, SEED_NOTE, client_for
from tests.fakes import serve_in_thread

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


def test_chat_page_loads_only_files_of_the_app(client: TestClient) -> None:
    urls = _page_urls(client, "/")
    # Relative links, so the page also works with the app mounted under a prefix.
    assert {"static/app.js", "static/app.css", "docs"} <= set(urls)
    for url in urls:
        r = client.get("/" + url)
        assert r.status_code == 200, url
        assert not _ABSOLUTE.search(r.text) or url.endswith(".svg"), f"{url} refers outside the app"


def test_static_files_stay_inside_their_folder(client: TestClient) -> None:
    assert client.get("/static/../settings.py").status_code == 404
    assert client.get("/static/%2e%2e/settings.py").status_code == 404


# ---- the chat page in a real browser --------------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# Headless, and none of Chromium's own background traffic (updates, sync, safe browsing), which a closed network
# refuses noisily.
CHROME_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,900"]


@contextmanager
def _server(lib: Library) -> Iterator[str]:
    """The real app over `lib`'s index in uvicorn, on a loopback port, in a thread (shares the loaded model)."""
    settings = lib.settings.model_copy(update={"server": ServerSettings(api_keys=[SecretStr(KEY)])})
    with serve_in_thread(create_app(library=Library(settings, embedder=lib.embedder))) as base:
        yield base


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Debian chromium + chromium-driver not installed (apt-get install -y chromium chromium-driver, "
                    "or `make browser`)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    # Every request the pages make, from Chrome's DevTools log: proof that nothing is fetched from outside.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _outside_requests(driver, base: str) -> list[str]:  # noqa: ANN001  # selenium WebDriver
    """Web requests the pages made to anywhere but the app (the browser's own chrome:// pages do not count)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return [u for u in urls if u.startswith(("http:", "https:", "ws:", "wss:")) and not u.startswith(base + "/")]


def _wait(driver, condition, seconds: float = 60):  # noqa: ANN001  # selenium WebDriver, callable
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.1).until(condition)


@pytest.mark.slow
def test_chat_page_answers_cites_and_follows_up_in_chromium(browser, seeded: Library, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    question = "What was Calix's Q4 revenue?"
    expected = seeded.ask(question)  # the same question through the library: the quote the page must highlight
    with _server(seeded) as base:
        browser.get(base + "/")
        _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#doc-list button.doc")) == 2)
        titles = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#doc-list .doc-title")]
        assert any("Calix Q4 results" in t for t in titles)

        def ask(text: str):  # noqa: ANN202  # selenium WebElement
            before = len(browser.find_elements(By.CSS_SELECTOR, "#turns .turn"))
            box = browser.find_element(By.ID, "question")
            box.clear()
            box.send_keys(text)
            browser.find_element(By.ID, "ask").click()
            return _wait(browser, lambda d: (
                turns := d.find_elements(By.CSS_SELECTOR, "#turns .turn .answer")) and len(turns) > before
                and turns[-1].get_attribute("data-state") in ("done", "abstained", "error") and turns[-1])

        answer = ask(question)
        assert answer.get_attribute("data-state") == "done", answer.text
        assert "$206 million" in answer.find_element(By.CSS_SELECTOR, ".answer-text").text
        assert "offline extractive provider, not a language model" in answer.find_element(By.CSS_SELECTOR,
                                                                                          ".badge").text
        assert "SOURCES" in answer.text.upper()

        answer.find_element(By.CSS_SELECTOR, ".answer-text button.cite[data-n='1']").click()
        mark = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#viewer-text mark#highlight"))[0]
        highlighted = browser.execute_script("return document.getElementById('highlight').textContent")
        assert highlighted == expected.citations[0].quote
        assert mark.is_displayed()
        assert browser.find_element(By.ID, "viewer-title").text == expected.citations[0].title
        assert "CALX" in browser.find_element(By.ID, "viewer-meta").text
        browser.save_screenshot(str(tmp_path / "chat-citation.png"))

        # A document from the list: its date and its source link (the research note has neither).
        browser.find_element(By.CSS_SELECTOR, f"#doc-list button[data-doc='{SEED_MAP}']").click()
        _wait(browser, lambda d: "2026-05-31" in d.find_element(By.ID, "viewer-meta").text)
        link = browser.find_element(By.CSS_SELECTOR, "#viewer-meta a")
        assert link.get_attribute("href") == "https://nullexposure.com/" and link.get_attribute("rel")
        assert not browser.find_elements(By.CSS_SELECTOR, "#viewer-text mark")

        # A follow-up only the history can answer: alone, "and how much of that is current?" abstains.
        ask("What is Calix's RPO?")
        follow = ask("and how much of that is current?")
        assert follow.get_attribute("data-state") == "done" and "$121 million" in follow.text
        browser.save_screenshot(str(tmp_path / "chat-follow-up.png"))
        refused = ask("x" * 2001)  # a 400 from /v1/ask is shown in place of that answer
        assert refused.get_attribute("data-state") == "error" and "longer than 2000" in refused.text
        assert not _outside_requests(browser, base)


@pytest.mark.slow
@pytest.mark.parametrize(("path", "rendered"), [("/docs", ".opblock"), ("/redoc", "[data-section-id]")])
def test_api_docs_render_offline_in_chromium(browser, seeded: Library, path: str, rendered: str) -> None:
    from selenium.webdriver.common.by import By

    with _server(seeded) as base:
        browser.get_log("performance")  # drop earlier pages' requests
        browser.get(base + path)
        _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, rendered)) > 5, seconds=30)
        assert "/v1/ask" in browser.find_element(By.TAG_NAME, "body").text
        assert not _outside_requests(browser, base)


@pytest.mark.slow
def test_chat_page_adds_a_document_and_shows_sentiment_evidence_in_chromium(browser, seeded_copy: Library,
                                                                            tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    note = tmp_path / "acme-q3.txt"
    note.write_text("Acme Corp Q3 results\nAcme Corp reported third-quarter revenue of $88 million, up 4%, and its "
                    "order backlog reached a record $410 million.\n", "utf-8")
    with _server(seeded_copy) as base:
        browser.get(base + "/")
        browser.execute_script("localStorage.clear()")
        browser.refresh()
        _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#doc-list button.doc")) == 2)
        browser.find_element(By.CSS_SELECTOR, "#add-box summary").click()

        def add(expect: str) -> str:
            browser.find_element(By.ID, "add-file").send_keys(str(note))
            browser.find_element(By.ID, "add-tickers").clear()  # a failed add keeps the form as typed
            browser.find_element(By.ID, "add-tickers").send_keys("acme")
            browser.find_element(By.ID, "add").click()
            return _wait(browser, lambda d: expect in (s := d.find_element(By.ID, "add-status").text) and s)

        assert "API key" in add("key")  # no key yet: the server's 401 message is shown
        browser.find_element(By.CSS_SELECTOR, "#key-box summary").click()
        browser.find_element(By.ID, "api-key").send_keys(KEY)
        browser.find_element(By.ID, "question").click()  # leaving the field stores the key
        assert add("Added") == "Added acme-q3 (1 passage)"
        _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#doc-list button.doc")) == 3)
        assert seeded_copy.get_document("acme-q3").tickers == ["ACME"]

        expected = run_sync(seeded_copy.adocument_sentiment(SEED_NOTE))
        browser.find_element(By.ID, "ticker").send_keys("calx")
        browser.find_element(By.ID, "score").click()
        box = _wait(browser, lambda d: d.find_element(By.ID, "sentiment").get_attribute("data-state") == "done"
                    and d.find_element(By.ID, "sentiment"))
        rollup = run_sync(seeded_copy.aticker_sentiment("CALX"))
        assert f"{rollup.score:+.2f}".replace("-", "−") in box.text and rollup.label in box.text
        assert rollup.relative is not None and rollup.relative.percentile is not None
        relative = box.find_element(By.CSS_SELECTOR, ".relative").text
        assert f"percentile {round(rollup.relative.percentile)} of {rollup.relative.peers} (corpus)" in relative
        box.find_element(By.CSS_SELECTOR, f"li[data-doc='{expected.doc_id}'] button.passage").click()
        evidence = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#sentiment .evidence button.cite"))
        assert "offline classifier, not a language model" in box.text
        evidence[0].click()
        _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#viewer-text mark#highlight"))
        highlighted = browser.execute_script("return document.getElementById('highlight').textContent")
        assert highlighted == expected.evidence[0].quote
        assert f"Evidence [{expected.evidence[0].n}] for the score" in browser.find_element(By.ID, "viewer-span").text
        browser.save_screenshot(str(tmp_path / "sentiment-evidence.png"))
        assert not _outside_requests(browser, base)
