"""Embedding backends of the bundled model. Import `make_embedder` from rag.embedding.factory; importing this
package loads no model code."""

from rag.embedding.base import CachedEmbedder, Embedder

__all__ = ["CachedEmbedder", "Embedder"]
