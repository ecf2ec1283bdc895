"""Versioned prompt templates from prompts/NAME.vN.md. A template has a system and a user part
(marked `<!-- system -->` / `<!-- user -->`) with `${var}` placeholders; its hash is recorded with results."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
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


def load_prompt(prompts_dir: Path, name: str) -> PromptTemplate:
    """`name` is e.g. 'answer.v1' (a file prompts/answer.v1.md)."""
    path = Path(prompts_dir) / f"{name}.md"
    if not path.is_file():
        available = sorted(p.name.removesuffix(".md") for p in Path(prompts_dir).glob("*.md"))
        raise BadInputError(f"no prompt {name!r} in {prompts_dir}; available: {', '.join(available)}")
    return _load(path, path.stat().st_mtime_ns)
