"""ONNX Runtime backends of the bundled sentence-transformers model, exported offline, once, into a cache.

Export: the transformer (eager attention, so onnxruntime's BERT optimizer can fuse it: 6 Attention, 12
SkipLayerNormalization, 6 BiasGelu nodes) via torch.onnx's TorchScript exporter, then optimised; the int8 variant
adds dynamic per-channel int8 weight quantisation (per-tensor lost ~7 points of cosine, measured). Pooling (mean
over the attention mask) and normalisation are done here in numpy, as sentence-transformers does for this model.
The cache key holds the source weights' hash, the variant and the CPU's vector extensions, so a cache copied to
another machine kind is rebuilt rather than run with a mismatched kernel choice."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from rag.embedding.base import CachedEmbedder, usable_cores

EXPORT_VERSION = "1"
OPSET = 17


def cpu_flags() -> list[str]:
    """The x86 vector extensions that change which int8 kernels onnxruntime picks."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return [platform.machine()]
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    return sorted(flags & {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "avx_vnni"}) or [
        platform.machine()]


def _weights_hash(model_path: Path) -> str:
    h = hashlib.sha256()
    for name in sorted(p.name for p in model_path.glob("*.safetensors")) or ["pytorch_model.bin"]:
        with open(model_path / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def _export(model_path: Path, target: Path, quantize: bool) -> None:
    # The tracer warns about shape-dependent branches in transformers' mask code; they are constant for
    # encoder-only inputs (mask as long as the input), and the vectors are checked against torch in the tests.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization warns through the root logger
        try:
            _export_quiet(model_path, target, quantize)
        finally:
            logging.getLogger().setLevel(logging.WARNING)


def _export_quiet(model_path: Path, target: Path, quantize: bool) -> None:
    import torch
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(model_path)
    bert = AutoModel.from_pretrained(model_path, attn_implementation="eager").eval()

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = torch.ones(2, 16, dtype=torch.long)
    raw = target / "raw.onnx"
    with torch.no_grad():
        torch.onnx.export(Encoder(), (sample, sample, torch.zeros_like(sample)), str(raw), input_names=names,
                          output_names=["last_hidden_state"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]})
    optimized = optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads,
                               hidden_size=config.hidden_size, opt_level=1)
    optimized.save_model_to_file(str(target / "model.onnx"))
    raw.unlink()
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # DefaultTensorType: the fused graph has com.microsoft nodes whose outputs shape inference cannot type.
        quantize_dynamic(str(target / "model.onnx"), str(target / "model_int8.onnx"), weight_type=QuantType.QInt8,
                         per_channel=True, extra_options={"DefaultTensorType": 1})
        (target / "model.onnx").unlink()


def exported_model(model_path: str, cache_dir: Path, quantize: bool) -> Path:
    """Path of the .onnx file for this model + variant + CPU, exporting it first if the cache lacks it."""
    source = Path(model_path)
    variant = "int8" if quantize else "fp32"
    key = hashlib.sha256(json.dumps([EXPORT_VERSION, _weights_hash(source), variant, cpu_flags()]).encode())
    folder = cache_dir / f"{source.name}-{variant}-{key.hexdigest()[:12]}"
    file = folder / ("model_int8.onnx" if quantize else "model.onnx")
    if file.exists():
        return file
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Export into a private folder and rename it into place: a crash or a concurrent export never leaves a
    # half-written model where a reader would find it.
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=cache_dir))
    try:
        _export(source, staging, quantize)
        for name in ("tokenizer.json", "sentence_bert_config.json", "config.json"):
            shutil.copy2(source / name, staging / name)
        (staging / "export.json").write_text(json.dumps({
            "source": str(source), "variant": variant, "cpu_flags": cpu_flags(), "opset": OPSET,
            "export_version": EXPORT_VERSION}, indent=2))
        try:
            os.rename(staging, folder)
        except OSError:
            if not file.exists():  # lost a race to another exporter is fine; anything else is not
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return file


class OnnxEmbedder(CachedEmbedder):
    def __init__(self, model_file: Path, name: str, backend: str, batch_size: int = 64,
                 query_cache_size: int = 1024, document_threads: int | None = None,
                 query_threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = model_file.parent
        max_length = int(json.loads((folder / "sentence_bert_config.json").read_text()).get("max_seq_length", 256))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.enable_padding()
        self._counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._counter.no_truncation()  # true lengths, to find chunks the model would truncate
        self._counter.no_padding()
        def session(threads: int, spin: bool) -> ort.InferenceSession:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if not spin:
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])

        cores = min(query_threads or usable_cores(), usable_cores())
        self.session = session(cores, spin=True)
        # A second session with fewer threads caps what document batches take from queries served meanwhile;
        # its threads do not spin between batches (spinning threads would take that core anyway).
        document_threads = min(document_threads or cores, cores)
        self.document_session = (self.session if document_threads == cores
                                 else session(document_threads, spin=False))
        self.batch_size = batch_size
        dim = int(json.loads((folder / "config.json").read_text())["hidden_size"])
        super().__init__(name, dim, backend, query_cache_size)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self._counter.encode_batch(texts)]

    def _encode(self, texts: list[str], query: bool = False) -> np.ndarray:
        session = self.session if query else self.document_session
        # Length-sorted batches keep padding (wasted compute) low; results go back in input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            encoded = self.tokenizer.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": np.zeros_like(ids)})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out
