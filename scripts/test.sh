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
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev,st]"
exec .venv/bin/python -m pytest "$@"
