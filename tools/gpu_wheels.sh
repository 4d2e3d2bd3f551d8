#!/usr/bin/env bash
# Wheels of our dependencies for the lent GPU machine's Python 3.12, which has torch, torchaudio, numpy, scipy,
# numba, scikit-learn, matplotlib, tensorboard, tqdm and pytest but none of the others, and no network. They go to
# .whl/ (ignored by git), which the device tool carries (name it in `carry`); tools/gpu_check.sh installs them.
# kenlm has no wheel on PyPI: it is built here with python3.12 when one is installed, else the check runs without
# the LM. About 10 MB in all.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qxF "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64 \
           manylinux_2_24_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64 manylinux_2_35_x86_64 any; do
    platforms+=(--platform "$tag")
done
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl soundfile cffi pycparser librosa audioread decorator pooch platformdirs soxr \
    jiwer rapidfuzz webdataset braceexpand num2words
python3 -m pip wheel --quiet --no-deps -w .whl docopt  # num2words needs it; PyPI has only its source
# A Python 3.12 to build kenlm with: $PYTHON312, else python3.12 on the PATH, else one pyenv installed.
py312=${PYTHON312:-}
python3.12 --version >/dev/null 2>&1 && py312=${py312:-python3.12}
py312=${py312:-$(ls -d "$HOME"/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | head -1)}
if [ -n "$py312" ]; then
    "$py312" -m pip wheel --quiet --no-deps -w .whl "kenlm>=0.2" || echo "gpu_wheels: kenlm did not build; no LM there"
else
    echo "gpu_wheels: no Python 3.12 here to build kenlm with; the GPU check will decode without the LM"
fi
ls .whl
du -sh .whl
