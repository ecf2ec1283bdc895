"""Versioned prompt templates from prompts/NAME.vN.md. A template has a system and a user part
(marked `<!-- system -->` / `<!-- user -->`) with `${var}` placeholders; its hash is recorded with results."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from string import Template

from pydantic import BaseModel

from rag.errors import BadInputError

_PART = re.compile(r"<!--\s*(system|user)\s*-->\s*\n")


class PromptTemplate(BaseModel):
    name: str
    hash: str
    system: str
    user: str

    def messages(self, **values: str) -> list[dict[str, str]]:
        try:
            return [
                {"role": "system", "content": Template(self.system).substitute(values).strip()},
                {"role": "user", "content": Template(self.user).substitute(values).strip()},
            ]
        except KeyError as exc:
            raise BadInputError(f"prompt {self.name} needs a value for {exc}") from exc


@lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int) -> PromptTemplate:
    raw = path.read_bytes()
    parts = dict(zip(*[iter(_PART.split(raw.decode("utf-8"))[1:])] * 2, strict=True))
    if set(parts) != {"system", "user"}:
        raise BadInputError(f"{path}: needs a <!-- system --> and a <!-- user --> part")
    return PromptTemplate(name=path.name.removesuffix(".md"), hash=hashlib.sha256(raw).hexdigest()[:16],
                          system=parts["system"], user=parts["user"])


def shipped_prompts_dir() -> Path:
    """The templates shipped as package data (the checkout's top-level prompts/ links there)."""
    return Path(str(files("rag").joinpath("prompt_templates")))


_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


def available_prompts(prompts_dir: Path | None = None) -> list[str]:
    return sorted(p.name.removesuffix(".md") for p in (prompts_dir or shipped_prompts_dir()).glob("*.md"))


def load_prompt(prompts_dir: Path | None, name: str) -> PromptTemplate:
    """`name` is e.g. 'answer.v1' (a file answer.v1.md in the prompts folder); names are plain file names, so a
    caller cannot reach a file outside that folder."""
    folder = prompts_dir or shipped_prompts_dir()
    path = folder / f"{name}.md"
    if not _NAME.match(name) or not path.is_file():
        raise BadInputError(f"no prompt {name!r}; available: {', '.join(available_prompts(folder))}")
    return _load(path, path.stat().st_mtime_ns)
