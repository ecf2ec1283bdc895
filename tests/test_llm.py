"""Model calls through litellm against a scripted OpenAI-compatible server on loopback (tests/fakes.py), the way a
local llama.cpp server is driven: per-task settings, whose server a call goes to, deadlines that really bound a
call, which errors are retried and which are configuration errors (400 / exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag import llm
from rag.errors import BadInputError, ConfigError, ProviderError, ProviderTimeoutError
from rag.library import Library
from rag.qa import run_sync
from rag.sentiment.service import sentiment_model
from rag.settings import LLMSettings, Settings, TaskLLMSettings
from tests.conftest import client_for
from tests.fakes import Stall, Status, fake_openai_server

MESSAGES = [{"role": "user", "content": "Say hi."}]
QUESTION = "What was Calix's Q4 revenue?"


def local(api_base: str, **fields: object) -> LLMSettings:
    """An OpenAI-compatible local server as the default model of every task."""
    return LLMSettings(model="openai/local", api_base=api_base, api_key="dummy", **fields)


def complete(settings: LLMSettings, task: str = "answer", model: str | None = None) -> str:
    return run_sync(llm.acomplete(MESSAGES, settings, task, model))  # type: ignore[arg-type]  # literal tasks


# ---- which model, which server -------------------------------------------------------------------------------
def test_per_task_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_LLM__MODEL", "openai/local")
    monkeypatch.setenv("RAG_LLM__API_BASE", "http://127.0.0.1:8080/v1")
    monkeypatch.setenv("RAG_LLM__API_KEY", "dummy")
    monkeypatch.setenv("RAG_LLM__ANSWER__MAX_TOKENS", "300")
    monkeypatch.setenv("RAG_LLM__ANSWER__STOP", '["<question>"]')
    monkeypatch.setenv("RAG_LLM__SENTIMENT__MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("RAG_LLM__SENTIMENT__TIMEOUT", "300")
    settings = Settings().llm
    answer, rewrite, sentiment = (llm.resolve(settings, t) for t in ("answer", "rewrite", "sentiment"))
    # RAG_LLM__* is the default of every task, with its server and key...
    for call in (answer, rewrite):
        assert call.model == "openai/local" and call.api_base == "http://127.0.0.1:8080/v1"
        assert call.api_key is not None and call.api_key.get_secret_value() == "dummy"
    assert (answer.max_tokens, answer.stop) == (300, ["<question>"])
    assert (rewrite.max_tokens, rewrite.stop, rewrite.timeout) == (128, None, 60.0)
    # ...but a task naming its own model does not borrow the default's server or key (issue 13, item 4).
    assert sentiment.model == "openai/gpt-4o-mini" and sentiment.api_base is None and sentiment.api_key is None
    assert (sentiment.timeout, sentiment.max_tokens) == (300, 512)


def test_a_per_call_override_never_inherits_a_server_or_key() -> None:
    settings = local("http://127.0.0.1:8080/v1")
    override = llm.resolve(settings, "answer", "openai/gpt-4o-mini")
    assert override.source == "override" and override.api_base is None and override.api_key is None
    same = llm.resolve(settings, "answer", "openai/local")  # naming the configured model keeps its connection
    assert same.api_base == "http://127.0.0.1:8080/v1"
    task_own = settings.model_copy(update={"sentiment": TaskLLMSettings(model="openai/s", api_base="http://s/v1")})
    assert llm.resolve(task_own, "sentiment", "openai/local").api_base is None


def test_sentiment_model_defaults_and_the_old_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sentiment_model(Settings()) == "local/finance-sentiment"  # local/extractive cannot score
    assert llm.resolve(Settings().llm, "sentiment").source == "fallback"
    monkeypatch.setenv("RAG_LLM__MODEL", "openai/local")
    monkeypatch.setenv("RAG_LLM__API_BASE", "http://127.0.0.1:8080/v1")
    call = llm.resolve(Settings().llm, "sentiment")  # a model that can score is the default for sentiment too
    assert call.model == "openai/local" and call.api_base == "http://127.0.0.1:8080/v1"
    monkeypatch.setenv("RAG_SENTIMENT__MODEL", "openai/gpt-4o-mini")  # the pre-#13 variable still works...
    call = llm.resolve(Settings().llm, "sentiment")
    assert call.model == "openai/gpt-4o-mini" and call.api_base is None  # ...without borrowing the server
    monkeypatch.setenv("RAG_LLM__SENTIMENT__MODEL", "openai/new")  # and the new one wins
    assert sentiment_model(Settings()) == "openai/new"


def test_each_task_goes_to_its_own_server_with_its_own_limits() -> None:
    with fake_openai_server("answer server") as (answer_base, answers), \
            fake_openai_server("sentiment server") as (sentiment_base, scores):
        settings = local(answer_base, stop=["<question>"]).model_copy(update={"sentiment": TaskLLMSettings(
            model="openai/scorer", api_base=sentiment_base, api_key="k2", max_tokens=64, stop=[])})
        assert complete(settings, "answer") == "answer server"
        assert complete(settings, "rewrite") == "answer server"
        assert complete(settings, "sentiment") == "sentiment server"
    assert [r["model"] for r in answers] == ["local", "local"] and [r["model"] for r in scores] == ["scorer"]
    assert answers[0].authorization == "Bearer dummy" and scores[0].authorization == "Bearer k2"
    assert (answers[0]["max_tokens"], answers[1]["max_tokens"], scores[0]["max_tokens"]) == (512, 128, 64)
    assert answers[0]["stop"] == ["<question>"] and "stop" not in scores[0]


def test_stop_sequences_reach_the_server() -> None:
    with fake_openai_server("Revenue was $206 million [1].\n<question>What else?</question>") as (base, _):
        assert complete(local(base, stop=["<question>"])).strip() == "Revenue was $206 million [1]."


# ---- deadlines ---------------------------------------------------------------------------------------------------
def test_deadline_bounds_a_stalled_call_retries_included() -> None:
    """Issue 13, item 5: one ask spent 279 s under a 60 s timeout (a 259 s request, then a retry)."""
    with fake_openai_server(["warm-up", Stall()]) as (base, received):
        # litellm's first call imports provider modules on the event loop thread, which no deadline can interrupt.
        assert complete(local(base)) == "warm-up"
        received.clear()
        started = time.perf_counter()
        with pytest.raises(ProviderTimeoutError, match=r"1\.5 s deadline"):
            complete(local(base, timeout=1.5, num_retries=3))
        elapsed = time.perf_counter() - started
        assert elapsed < 2.5, elapsed
    assert 1 <= len(received) <= 2  # the per-request timeout may fire first and leave no time for a second try


def test_deadline_bounds_a_stream_that_stalls_midway() -> None:
    async def collect(settings: LLMSettings) -> list[str]:
        return [d async for d in llm.astream(MESSAGES, settings, "answer")]

    with fake_openai_server(Stall(after="Revenue was")) as (base, _):
        started = time.perf_counter()
        with pytest.raises(ProviderTimeoutError):
            run_sync(collect(local(base, timeout=1.0)))
        assert time.perf_counter() - started < 2.0


# ---- retried and not retried -------------------------------------------------------------------------------------
def test_rate_limits_and_5xx_are_retried_with_backoff() -> None:
    with fake_openai_server([Status(429), Status(503), "hi"]) as (base, received):
        assert complete(local(base, num_retries=2)) == "hi"
    assert len(received) == 3
    with fake_openai_server(Status(500)) as (base, received), pytest.raises(ProviderError) as caught:
        complete(local(base, num_retries=1))
    assert len(received) == 2 and caught.value.retryable and not isinstance(caught.value, BadInputError)


def test_local_server_without_a_key_is_refused_up_front_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13, item 3: without a key the OpenAI client says "Missing credentials", which was reported as a
    server error and retried."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with fake_openai_server("hi") as (base, received):
        with pytest.raises(ConfigError, match="RAG_LLM__API_KEY=dummy"):
            complete(LLMSettings(model="openai/local", api_base=base, num_retries=3))
    assert received == []


def test_401_is_a_config_error_and_not_retried() -> None:
    with fake_openai_server("hi", api_key="secret") as (base, received):
        started = time.perf_counter()
        with pytest.raises(ConfigError, match="AuthenticationError.*Hint: .*RAG_LLM__API_KEY"):
            complete(local(base, num_retries=3))
    assert len(received) == 1 and time.perf_counter() - started < 5


def test_unknown_provider_and_empty_model_name_are_config_errors() -> None:
    for model, needle in (("nonsense/xyz", "no provider 'nonsense'"), ("openai/", "names no model"),
                          ("local/nope", "unknown model")):
        with pytest.raises(ConfigError, match=needle):
            llm.prepare(LLMSettings(), "answer", model)


def test_oversized_prompt_is_bad_input_with_a_context_hint() -> None:
    """llama.cpp's default context is 2,048 tokens; sentiment prompts reach ~3,400 with a repair turn."""
    message = "the request exceeds the available context size, try increasing it"
    with fake_openai_server(Status(400, message)) as (base, received), \
            pytest.raises(BadInputError, match="-c 4096") as caught:
        complete(local(base), "sentiment")
    assert len(received) == 1 and not isinstance(caught.value, ConfigError)  # other documents may fit


# ---- at the edges: HTTP 400 and exit 2 ---------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["nonsense/xyz", "openai/", "local/finance-sentiment"])
@pytest.mark.parametrize("stream", [False, True])
def test_http_config_errors_are_400_not_502(seeded: Library, monkeypatch: pytest.MonkeyPatch, model: str,
                                            stream: bool) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    # Any model may be named here, so the model's own configuration is what is refused (the server's allow-list
    # answers 403 before that by default: tests/test_reliability.py).
    with client_for(seeded, allowed_models=["*"]) as client:
        r = client.post("/v1/ask", json={"question": QUESTION, "model": model, "stream": stream})
        assert r.status_code == 400 and r.json()["error"]["type"] == "ConfigError", r.text
        r = client.post("/v1/chat/completions", json={"model": model, "stream": stream,
                                                      "messages": [{"role": "user", "content": QUESTION}]})
        assert r.status_code == 400, r.text


def test_http_override_gets_no_key_from_the_configured_server(seeded: Library,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with fake_openai_server("Q4 revenue was $206 million [1].") as (base, received):
        lib = Library(seeded.settings.model_copy(update={"llm": local(base)}), embedder=seeded.embedder)
        with client_for(lib, allowed_models=["*"]) as client:  # the allow-list is not what is tested here
            r = client.post("/v1/ask", json={"question": QUESTION, "model": "openai/gpt-4o-mini"})
            assert r.status_code == 400 and "per-call model gets no api_base/api_key" in r.text
            assert client.post("/v1/ask", json={"question": QUESTION}).status_code == 200
    assert [r["model"] for r in received] == ["local"]


@pytest.mark.slow
def test_cli_401_exits_2_with_one_line_hint(seeded_dir: Path) -> None:
    with fake_openai_server("hi", api_key="secret") as (base, received):
        env = {**os.environ, "RAG_LLM__MODEL": "openai/local", "RAG_LLM__API_BASE": base,
               "RAG_LLM__API_KEY": "wrong", "RAG_LLM__NUM_RETRIES": "3"}
        result = subprocess.run([sys.executable, "-m", "rag", "ask", QUESTION, "--index", str(seeded_dir)],
                                capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "AuthenticationError" in lines[0] and "Hint:" in lines[0]
    assert len(received) == 1


@pytest.mark.slow
def test_a_script_of_questions_exits_without_a_logging_worker_error(seeded_dir: Path) -> None:
    """litellm's logging worker flushes at exit; it used to do so on the main thread while rag's loop still ran the
    same callbacks, and a script's run ended with "LoggingWorker error: cannot reuse already awaited coroutine" (3
    of 4 runs of 30 questions on the earnings index)."""
    script = ("import sys\n"
              "from rag.process import prepare_process; prepare_process()\n"
              "from rag.library import Library\n"
              "from rag.settings import Settings\n"
              "lib = Library(Settings(index_dir=sys.argv[1]))\n"
              "for i in range(30):\n"
              "    lib.ask(\"What was Calix's revenue in Q4?\" + ' ' * i, [])\n")
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", script, str(seeded_dir)], capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr
        assert "LoggingWorker" not in result.stderr and "never awaited" not in result.stderr, result.stderr


def test_translated_missing_credentials_is_a_config_error() -> None:
    """The fallback when the up-front check cannot know (a provider litellm reports no key for)."""
    litellm = llm.litellm_module()
    exc = litellm.InternalServerError("OpenAIException - Missing credentials. Please pass an `api_key`",
                                      llm_provider="openai", model="openai/local")
    error = llm._translate(exc, llm.resolve(local("http://127.0.0.1:1/v1"), "answer"))
    assert isinstance(error, ConfigError) and "RAG_LLM__API_KEY=dummy" in str(error)



def test_http_stalled_model_is_a_504_within_the_deadline(seeded: Library) -> None:
    with fake_openai_server(["warm-up", Stall()]) as (base, _):
        lib = Library(seeded.settings.model_copy(update={"llm": local(base, timeout=1.0)}), embedder=seeded.embedder)
        assert complete(local(base)) == "warm-up"  # litellm's first call imports modules on the loop thread
        with client_for(lib) as client:
            started = time.perf_counter()
            r = client.post("/v1/ask", json={"question": QUESTION})
            assert r.status_code == 504 and "1 s deadline" in r.json()["error"]["message"]
            assert time.perf_counter() - started < 3
