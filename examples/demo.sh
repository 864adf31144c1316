#!/bin/sh
# demo.sh NNCC — the bundled example: describe the traced model, print nncc's
# IR with every shape inferred, compile it to a shared object, and run that
# through the example application (examples/run_model.c, built next to nncc);
# then compile it with no --input (every dim but the channels symbolic) and
# run that one .so at batch 3.
set -eu
nncc=${1:-build/nncc}
here=$(dirname "$0")
build=$(dirname "$nncc")
model="$here/model_jit.pt"
echo "== nncc inspect $model"
"$nncc" inspect "$model"
echo
echo "== nncc $model --emit=ir --input x:f32[1,1,28,28]"
"$nncc" "$model" --emit=ir --input 'x:f32[1,1,28,28]'
echo
mkdir -p "$build/demo"
echo "== nncc $model -o $build/demo/model.so --input x:f32[1,1,28,28]"
"$nncc" "$model" -o "$build/demo/model.so" --input 'x:f32[1,1,28,28]'
echo
echo "== $build/run_model $build/demo/model.so"
"$build/run_model" "$build/demo/model.so"
echo
echo "== $nncc $model -o $build/demo/model_any.so   (no --input: symbolic dims)"
"$nncc" "$model" -o "$build/demo/model_any.so"
echo
echo "== $build/run_model $build/demo/model_any.so B=3 H=28 W=28"
"$build/run_model" "$build/demo/model_any.so" B=3 H=28 W=28
