#!/usr/bin/env bash
# The layerwise tour on the bundled sample: index, search one layer and all layers,
# compare layers for one query, build a mix and a hybrid view from stored vectors,
# evaluate every view, and use the Python API.
set -euo pipefail
LW=${1:-layerwise}
PY=${2:-$(dirname "$LW")/python}
here=$(cd "$(dirname "$0")" && pwd)
out=${LAYERWISE_HOME:-demo-home}
mkdir -p "$out"
step() { printf '\n\033[1m$ layerwise %s\033[0m\n' "$*"; "$LW" "$@"; }

step index demo "$here/sample/docs"
step info demo
step search demo "how do I rotate the logs" --view -1 -k 3
step search demo "how do I rotate the logs" --view all -k 3
step search demo "how do I rotate the logs" --view "rrf(bm25 | -1)" -k 3
step compare demo "why can't light escape some collapsed stars" -k 5
step mix demo last4 "wsum(-4:; 0.1,0.2,0.3,0.4)"
step mix demo hybrid "rrf(bm25 | -1)" --default
step search demo "bread with a natural leaven" -k 3
step evaluate demo --queries "$here/sample/queries.jsonl" --qrels "$here/sample/qrels.tsv" --trials 2000 --plot "$out/demo-layers.png"
step embed "$here/sample/texts.txt" --layers all -o "$out/vectors.npz"
step export demo --layers -1 -o "$out/stored-layer6.npz"
printf '\n\033[1m$ python examples/api.py\033[0m\n'
"$PY" "$here/api.py"
printf '\nDone. The per-layer plot is %s/demo-layers.png; the data lives in %s.\n' "$out" "$out"
printf '\nTo compare the layers in a browser, serve the demo collection:\n  LAYERWISE_HOME=%s %s serve\nthen open http://127.0.0.1:8000/?collection=demo\n' "$out" "$LW"
