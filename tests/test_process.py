"""The process set-up every entry point runs: here, that `ast.parse` survives threads on the CPython versions
where it does not by itself (gh-106905)."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from rag.process import parse_is_thread_unsafe

# Two threads parse while a Python callback runs inside every garbage collection: the GIL can pass between them
# mid-parse, which is how a finalizer or a server thread triggers the bug in real runs.
RACE = """
import ast, gc, sys, threading, time
if sys.argv[1] == "locked":
    from rag.process import prepare_process
    prepare_process()
SOURCE = "x = [" + ",".join(f"({i}, 'a{i}', [{i}, {{'k': {i}}}])" for i in range(300)) + "]"
failures = []
gc.callbacks.append(lambda phase, info: time.sleep(0))
gc.set_threshold(100)

def parse_often():
    for _ in range(60):
        try:
            ast.parse(SOURCE)
            ast.literal_eval("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 384)}")
        except SystemError as exc:
            failures.append(exc)
            return

threads = [threading.Thread(target=parse_often) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(failures), failures[:1])
"""


def test_the_affected_versions() -> None:
    assert parse_is_thread_unsafe((3, 11, 7, "final", 0)) and parse_is_thread_unsafe((3, 12, 1))
    assert not any(parse_is_thread_unsafe(v) for v in [(3, 11, 8), (3, 12, 2), (3, 13, 0), (3, 10, 13)])


def test_threads_parse_safely_after_prepare_process() -> None:
    run = subprocess.run([sys.executable, "-c", RACE, "locked"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0] == "0", run.stdout


@pytest.mark.skipif(not parse_is_thread_unsafe(sys.version_info), reason="this Python parses safely by itself")
def test_the_race_is_real_here_without_the_lock() -> None:
    """Shows the test above can fail: the same run without prepare_process hits the bug on this interpreter."""
    run = subprocess.run([sys.executable, "-c", RACE, "plain"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0] != "0" and "recursion depth mismatch" in run.stdout, run.stdout


def test_prepare_process_wraps_ast_parse_once() -> None:
    first = ast.parse  # conftest already ran prepare_process in this process
    from rag.process import prepare_process

    prepare_process()
    assert ast.parse is first
