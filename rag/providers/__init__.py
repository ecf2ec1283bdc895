"""Offline models behind one registry (rag.providers.registry). The built-ins register here, through the same
`register_models` hook a third party's module would offer; importing any provider module runs this first."""

from rag.providers import extractive, finance_sentiment, registry

for _module in (extractive, finance_sentiment):
    _module.register_models(registry.register)
