#!/usr/bin/env bash
# Sets up everything the tests need from the project's own files, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# The web page is tested in headless Debian Chromium (Playwright drives the system binary; no browser download).
if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "wenquanyi"; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium fonts-wqy-zenhei >/dev/null
fi
# Tests marked postgres start a real PostgreSQL server in a temporary folder (initdb + pg_ctl; as the postgres user
# when run as root): Debian's server binaries, found on PATH or in /usr/lib/postgresql/<version>/bin.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql >/dev/null
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# local-llm: llama-cpp-python compiles llama.cpp from source the first time (4-17 min on 2 cores); the wheel then
# sits in pip's wheel cache. GGML_NATIVE=OFF keeps that cached wheel usable on any x86-64 CPU.
CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" .venv/bin/python -m pip install -q -e ".[dev,st,local-llm]"
exec .venv/bin/python -m pytest "$@"
