#!/bin/sh
# demo.sh NNCC — the bundled example: describe the traced model, then compile
# it and print nncc's IR with every shape inferred.
set -eu
nncc=${1:-build/nncc}
here=$(dirname "$0")
model="$here/model_jit.pt"
echo "== nncc inspect $model"
"$nncc" inspect "$model"
echo
echo "== nncc $model --emit=ir --input x:f32[1,1,28,28]"
"$nncc" "$model" --emit=ir --input 'x:f32[1,1,28,28]'
