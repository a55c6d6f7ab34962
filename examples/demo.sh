#!/usr/bin/env bash
# The layerwise tour on the bundled sample: index, search one layer and all layers,
# compare layers for one query, build a mix from stored vectors, evaluate every layer.
set -euo pipefail
LW=${1:-layerwise}
here=$(cd "$(dirname "$0")" && pwd)
out=${LAYERWISE_HOME:-demo-home}
mkdir -p "$out"
step() { printf '\n\033[1m$ layerwise %s\033[0m\n' "$*"; "$LW" "$@"; }

step index "$here/sample/docs" --collection demo
step info demo
step search demo "how do I rotate the logs" --layer -1 -k 3
step search demo "how do I rotate the logs" --layer all -k 3
step compare demo "why can't light escape some collapsed stars" -k 5
step mix demo last4 "wsum(-4:; 0.1,0.2,0.3,0.4)"
step search demo "bread with a natural leaven" --layer last4 -k 3
step search demo "bread with a natural leaven" --layer bm25 -k 3
step evaluate demo --queries "$here/sample/queries.jsonl" --qrels "$here/sample/qrels.tsv" --trials 2000 --plot "$out/demo-layers.png"
step embed "$here/sample/texts.txt" --layers all -o "$out/vectors.npz"
printf '\nDone. The per-layer plot is %s/demo-layers.png; the data lives in %s.\n' "$out" "$out"
