"""What every entry point (CLI, server, Ray workers, tests, benchmarks) sets up in its own process before it
loads anything. Importing rag alone changes nothing."""

from __future__ import annotations

import ast
import sys
import threading
from collections.abc import Callable
from typing import Any

from rag.offline import use_offline_environment


def prepare_process() -> None:
    use_offline_environment()
    lock_ast_parse()


def parse_is_thread_unsafe(version: tuple[int, ...]) -> bool:
    """CPython 3.11 before 3.11.8 and 3.12 before 3.12.2 keep one recursion counter for every thread building an
    AST (gh-106905): when a garbage collection inside `ast.parse` lets another thread parse too, one of them fails
    with "SystemError: AST constructor recursion depth mismatch". Here that is not rare: every `np.load` parses
    its file header with `ast.literal_eval`, the server loads index files from worker threads, and 3.11 formats
    every traceback with `ast.parse`. It failed a CI run."""
    return (3, 11) <= version[:3] < (3, 11, 8) or (3, 12) <= version[:3] < (3, 12, 2)


def lock_ast_parse() -> None:
    """On the affected versions, one thread at a time inside `ast.parse` (re-entrant: a finalizer run by a
    collection inside it may parse too). Every caller, `ast.literal_eval` included, looks `ast.parse` up when it
    calls, so replacing the attribute reaches them all."""
    if not parse_is_thread_unsafe(sys.version_info) or getattr(ast.parse, "rag_locked", False):
        return
    parse: Callable[..., Any] = ast.parse
    lock = threading.RLock()

    def locked_parse(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return parse(*args, **kwargs)

    locked_parse.__doc__ = parse.__doc__
    locked_parse.rag_locked = True  # type: ignore[attr-defined]  # so a second call does not wrap it twice
    ast.parse = locked_parse  # type: ignore[assignment]
