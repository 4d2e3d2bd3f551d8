#!/usr/bin/env bash
# Create (or reuse) the Python environment for asr and install the package into it.
#
# The environment is cached outside the clone, keyed on a hash of pyproject.toml and the Python version, so a
# fresh clone with the same dependencies reuses it; `.venv` in the clone points at it.
#   ASR_VENV=/path   use this environment instead of the cache
#   PYTHON=python3.x interpreter to build it with (default: python3.11, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-$(command -v python3.11 || command -v python3)}
key=$( (cat pyproject.toml; "$python" --version) | sha256sum | cut -c1-16)
venv=${ASR_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/asr/venv-$key}

if [ ! -x "$venv/bin/asr" ] || [ ! -f "$venv/.complete" ]; then
    echo "setup: creating $venv (torch brings about 5 GB of CUDA libraries; a few minutes)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e ".[test,tts]"
    touch "$venv/.complete"
fi
# The cached environment may have been made from another clone: point the editable install at this one.
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e . 2>/dev/null \
    || "$venv/bin/python" -m pip install --quiet --no-deps -e .
ln -sfn "$venv" .venv
# The KenLM bridge lets the LM search ask KenLM without leaving compiled code (asr/kenlm_native.py; about twice
# as fast). It is compiled once per KenLM version, with g++; without it the search works as well, only slower.
command -v "${CXX:-g++}" >/dev/null || bash tools/apt_install.sh g++ || true
"$venv/bin/python" -m asr.kenlm_native \
    || echo "setup: the KenLM bridge was not built (see above); the LM search works without it, about half as fast"
echo "setup: environment ready at .venv -> $venv"
