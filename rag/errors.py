"""Domain errors. The CLI maps them to exit codes and the HTTP API to status codes, only at the edges."""


class RagError(Exception):
    """Base class for every error this package raises on purpose."""

    http_status = 500
    exit_code = 1


class BadInputError(RagError):
    """The caller gave something we cannot use (unsupported file, empty text, bad filter...)."""

    http_status = 400
    exit_code = 2


class ConfigError(BadInputError):
    """The model cannot be called as configured: no credentials, an unknown provider or model name, a model asked
    for a task it does not do, a prompt over its context window. A retry cannot help; the message ends with a hint
    naming the setting to change. Batch jobs stop on it instead of failing every document the same way."""


class DocumentTooLargeError(BadInputError):
    http_status = 413


class NotFoundError(RagError):
    http_status = 404
    exit_code = 3


class IndexMissingError(NotFoundError):
    """No index has been built at the configured location yet."""


class IndexDamagedError(RagError):
    """A file of the index generation is missing, truncated or unreadable. Served as 503: the data may come back
    (`rag index repair` falls back to the newest intact generation), the request itself was fine."""

    http_status = 503
    exit_code = 6


class StorageFullError(RagError):
    """The disk filled up during a write; the write was abandoned and the index left as it was."""

    http_status = 507
    exit_code = 7


class ModelNotAllowedError(BadInputError):
    """An HTTP caller asked for a model outside the server's allow-list (it would be called with the server's
    own provider credentials)."""

    http_status = 403


class IndexMismatchError(RagError):
    """The index was built with another embedding model than the one configured."""

    http_status = 409
    exit_code = 4


class ProviderError(RagError):
    """The LLM provider failed (bad gateway) after retries."""

    http_status = 502
    exit_code = 5

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        # Rate limits, timeouts, connection failures and 5xx may succeed later; batch jobs back off and retry.
        self.retryable = retryable


class ProviderTimeoutError(ProviderError):
    http_status = 504

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class MalformedOutputError(ProviderError):
    """The model answered, but not in the structure we asked for."""
