#!/usr/bin/env bash
# Fills wheelhouse/ with every wheel the container image needs (Dockerfile: the build installs from it with
# --no-index, so it needs no network): rag itself, CPU torch 2.13.0 and all dependencies, for Python 3.11.
# Some wheels require a late 3.11 patch release (soupsieve 4.x: >=3.11.5); for each, an older release that any
# 3.11 accepts is added beside it, so base images with an early 3.11 (Debian bookworm's 3.11.2) work too: pip
# picks whichever the image's Python accepts.
set -euo pipefail
PY=${PY:-.venv/bin/python}
cd "$(dirname "$0")/.."
rm -rf wheelhouse
"$PY" -m pip wheel -q --disable-pip-version-check -w wheelhouse "torch==2.13.0" .
"$PY" - <<'PYTHON'
import glob
import subprocess
import sys
import zipfile

from packaging.specifiers import SpecifierSet

for wheel in sorted(glob.glob("wheelhouse/*.whl")):
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = z.read(meta).decode("utf-8", "replace").splitlines()
    name = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Name:"))
    requires = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Requires-Python:")), "")
    if requires and "3.11.0" not in SpecifierSet(requires):
        print(f"{name} requires Python {requires}: adding a release any 3.11 accepts")
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                        "--only-binary=:all:", "--python-version", "3.11.0", "-d", "wheelhouse", name], check=True)
PYTHON
ls wheelhouse | wc -l
du -sh wheelhouse
