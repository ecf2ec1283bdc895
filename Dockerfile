# rag as a container: the HTTP service (API, chat page at /, docs at /docs) over an index on a volume.
#
# The build uses no network: every Python package comes from ./wheelhouse, filled on the host by
# `make wheelhouse` (CPU torch 2.13.0 included), so it builds where there is no index to download from.
#   make wheelhouse && podman build -t rag .        (or docker build)
#   podman run -p 8000:8000 -v rag-index:/data/index rag
#   podman run -v rag-index:/data/index -v ./seeds:/seeds:ro rag rag ingest /seeds
# BASE: python:3.11-slim by default; any Debian-like image with python3.11 (and its venv module) works, e.g. a
# locally built one where no registry is reachable (scripts/container-test.sh).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
COPY wheelhouse/ /wheelhouse/
RUN python3 -m venv /opt/rag \
 && /opt/rag/bin/pip install --no-cache-dir --no-index --find-links /wheelhouse "torch==2.13.0" \
 && /opt/rag/bin/pip install --no-cache-dir --no-index --find-links /wheelhouse rag \
 && /opt/rag/bin/pip check
# The ONNX export of the bundled embedding model, done once here rather than at every container's first start
# (~30 s): it lands in RAG_EMBEDDING__CACHE_DIR, which is part of the image.
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True TOKENIZERS_PARALLELISM=false \
    RAG_EMBEDDING__CACHE_DIR=/opt/rag-cache/onnx
RUN /opt/rag/bin/python -c "from rag.embedding.factory import make_embedder; from rag.settings import Settings; \
e = make_embedder(Settings().embedding); print('embedding dim', len(e.embed_batch(['warm up'])[0]))"

FROM ${BASE}
RUN useradd --uid 10001 --create-home --home-dir /home/rag --shell /usr/sbin/nologin rag \
 && mkdir -p /data/index && chown -R rag:rag /data
COPY --from=build /opt/rag /opt/rag
# Owned by rag: the export's cache key includes the CPU's vector extensions, so on another CPU kind the server
# exports again, into this folder.
COPY --from=build --chown=rag:rag /opt/rag-cache /opt/rag-cache
# No hub, no model downloads, no litellm cost-map fetch: the image runs with no network (rag.offline sets the
# same defaults; here they also cover `python -c` and other entry points). The index lives on a volume.
ENV PATH=/opt/rag/bin:$PATH \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True TOKENIZERS_PARALLELISM=false \
    PYTHONUNBUFFERED=1 \
    RAG_EMBEDDING__CACHE_DIR=/opt/rag-cache/onnx \
    RAG_INDEX_DIR=/data/index \
    RAG_SERVER__HOST=0.0.0.0 RAG_SERVER__PORT=8000
USER rag
WORKDIR /home/rag
VOLUME ["/data/index"]
EXPOSE 8000
# /health answers 200 with or without an index ("empty" before the first ingest).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('RAG_SERVER__PORT', '8000') + '/health', timeout=4)"]
CMD ["rag", "serve", "--host", "0.0.0.0"]
