"""rag: cited retrieval Q&A and sentiment over financial research documents."""

import os

# Everything here runs offline: these must be set before transformers/litellm are first imported,
# which is why they live at package import rather than in Settings.
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_key, _value)

__version__ = "0.1.0"
