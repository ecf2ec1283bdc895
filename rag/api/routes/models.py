"""GET /v1/models (OpenAI-compatible): the models this server answers and scores with, and every model in the
provider registry, so an OpenAI client or chat UI pointed at /v1 can list them and pick one by id."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from rag import llm
from rag.api.deps import ReadAuth, SettingsDep, allowed_models
from rag.api.schemas import ErrorBody
from rag.errors import NotFoundError
from rag.providers import registry
from rag.settings import Settings

router = APIRouter(tags=["openai-compatible"], dependencies=[ReadAuth])

# OpenAI's `created` is when a model was published; ours are configured, not published, so every entry carries
# the time this server started.
_STARTED = int(time.time())

Role = Literal["answer", "rewrite", "sentiment"]


class ModelCard(BaseModel):
    """One entry of OpenAI's model list, with what rag knows about it."""

    id: str = Field(description="Model string, usable as `model` in /v1/ask and /v1/chat/completions.")
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time this server started (configured models have no release date).")
    owned_by: str = Field(description="`rag` for models in rag's registry, else the litellm provider prefix.")
    configured_for: list[Role] = Field(
        default_factory=list, description="What this server uses the model for by default (from its settings).")
    tasks: list[Role] = Field(default_factory=list, description="Tasks a registered model can do; empty for a "
                              "litellm model (rag does not know, and does not restrict it).")
    offline: bool = Field(False, description="True for rag's offline providers (not language models).")
    description: str = ""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def model_cards(settings: Settings) -> list[ModelCard]:
    """Configured models first (answer, then sentiment), then the rest of the registry by name."""
    roles: dict[str, list[Role]] = {}
    for role in ("answer", "rewrite", "sentiment"):
        # Per-task settings (RAG_LLM__<TASK>__MODEL) and their fallbacks, exactly as calls resolve them.
        roles.setdefault(llm.resolve(settings.llm, role).model, []).append(role)  # type: ignore[arg-type]
    # Only what callers may pick (RAG_SERVER__ALLOWED_MODELS): a listed model that the server then refuses with 403
    # would mislead a chat front-end.
    allowed = allowed_models(settings)
    names = [n for n in [*roles, *(m.name for m in registry.models() if m.name not in roles)]
             if allowed is None or n in allowed]
    cards = []
    for name in names:
        entry = registry.get(name)
        cards.append(ModelCard(
            id=name, created=_STARTED, owned_by="rag" if entry else name.split("/", 1)[0] if "/" in name else "openai",
            configured_for=roles.get(name, []), tasks=sorted(entry.tasks) if entry else [],
            offline=bool(entry and entry.offline), description=entry.description if entry else ""))
    return cards


@router.get("/v1/models", response_model=ModelList, summary="List models (OpenAI-compatible)")
def list_models(settings: SettingsDep) -> ModelList:
    """The configured answer and sentiment models, then every model in rag's provider registry."""
    return ModelList(data=model_cards(settings))


@router.get("/v1/models/{model_id:path}", response_model=ModelCard, responses={404: {"model": ErrorBody}},
            summary="One model (OpenAI-compatible)")
def get_model(model_id: str, settings: SettingsDep) -> ModelCard:
    for card in model_cards(settings):
        if card.id == model_id:
            return card
    raise NotFoundError(f"no model {model_id!r} is configured or registered; see GET /v1/models")
