"""rag: cited retrieval Q&A and sentiment over financial research documents.

Importing rag changes nothing in the process: the CLI and the server set the offline environment
(rag.offline.use_offline_environment) at their entry points."""

__version__ = "0.1.0"
