"""The process environment for offline use, set by every entry point (rag.process.prepare_process), never by
importing rag."""

from __future__ import annotations

import os

OFFLINE_ENVIRONMENT = {
    # No hub: the embedding model comes from a package folder; transformers must not try to download.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    # litellm otherwise fetches its model cost map from the network at import.
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "TOKENIZERS_PARALLELISM": "false",
}


def use_offline_environment() -> None:
    """Defaults only: a value the user set wins."""
    for key, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
