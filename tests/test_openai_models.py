"""GET /v1/models through the official openai client, on the real app in process (the TestClient is an httpx
client, which the openai client accepts as its transport)."""

from __future__ import annotations

import pytest

from rag.library import Library
from rag.settings import LLMSettings
from tests.conftest import client_for
from tests.fakes import scripted_provider

openai = pytest.importorskip("openai")


def _openai(test_client) -> openai.OpenAI:  # noqa: ANN001  # fastapi TestClient
    return openai.OpenAI(base_url=f"{test_client.base_url}/v1", api_key="unused-for-reads", http_client=test_client,
                         max_retries=0)


def test_models_lists_configured_then_registered_models(seeded: Library) -> None:
    with client_for(seeded) as c:
        page = _openai(c).models.list()
        ids = [m.id for m in page.data]
        assert ids[:2] == ["local/extractive", "local/finance-sentiment"]
        first = page.data[0].model_dump()
        assert first["object"] == "model" and first["owned_by"] == "rag" and first["created"] > 0
        assert first["configured_for"] == ["answer", "rewrite"] and first["offline"] is True
        assert page.data[1].model_dump()["configured_for"] == ["sentiment"]
        assert _openai(c).models.retrieve("local/finance-sentiment").model_dump()["tasks"] == ["sentiment"]
        with pytest.raises(openai.NotFoundError):
            _openai(c).models.retrieve("local/nope")


def test_models_follow_settings_and_the_registry(seeded: Library) -> None:
    lib = Library(seeded.settings.model_copy(update={"llm": LLMSettings(model="openai/gpt-4o-mini")}),
                  embedder=seeded.embedder)
    # Any model may be picked here, so every registered one is listed (by default only the configured and
    # offline ones are: test_models_list_only_what_callers_may_pick).
    with scripted_provider(["unused"], names=("fake/listed",)), client_for(lib, allowed_models=["*"]) as c:
        cards = {m.id: m.model_dump() for m in _openai(c).models.list().data}
    # A litellm model that can score is used for sentiment too (rag.sentiment.service.sentiment_model).
    assert cards["openai/gpt-4o-mini"]["configured_for"] == ["answer", "rewrite", "sentiment"]
    assert cards["openai/gpt-4o-mini"]["owned_by"] == "openai" and cards["openai/gpt-4o-mini"]["tasks"] == []
    assert cards["fake/listed"]["configured_for"] == [] and cards["fake/listed"]["offline"] is False
    assert {"local/extractive", "local/finance-sentiment"} <= set(cards)


def test_models_list_only_what_callers_may_pick(seeded: Library) -> None:
    with client_for(seeded, allowed_models=["local/extractive"]) as client:
        ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
        assert ids == ["local/extractive"]
        assert client.get("/v1/models/local/finance-sentiment").status_code == 404


def test_an_empty_api_key_is_refused_at_startup() -> None:
    from pydantic import SecretStr, ValidationError

    from rag.settings import ServerSettings

    with pytest.raises(ValidationError, match="must not be empty"):
        ServerSettings(api_keys=[SecretStr("key1"), SecretStr(" ")])
