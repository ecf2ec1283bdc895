"""rag: cited retrieval Q&A and sentiment over financial research documents.

Importing rag changes nothing in the process: the CLI, the server and the other entry points set it up
(rag.process.prepare_process)."""

__version__ = "0.1.0"
