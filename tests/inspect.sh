#!/bin/bash
# inspect.sh — `nncc inspect MODEL.pt`: the layer table of the bundled
# example against exact expected text (tests/inspect/*.expected, static and
# symbolic shapes; NNCC_UPDATE_GOLDEN=1 rewrites them), --json against what
# torch computes (parameters from the module, MACs of every convolution and
# linear layer by formula from forward hooks, for the example and for
# torchvision's resnet18: 11,689,512 parameters, 1,814,073,344 MACs), the
# symbolic totals evaluated at the static shape, --dot accepted by Graphviz
# with one cluster per fused group, and the command's usage errors.
set -u
: "${NNCC:?}" "${NNCC_SRC:?}"
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass+1)); }
bad() { echo "FAIL $1"; fail=$((fail+1)); }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$NNCC_SRC" || exit 1

golden() { # NAME ARGS...
  local name=$1; shift
  local exp="tests/inspect/$name.expected"
  { "$NNCC" inspect "$@" 2>&1; echo "exit $?"; } >"$work/out"
  if [ "${NNCC_UPDATE_GOLDEN:-0}" = 1 ]; then cp "$work/out" "$exp"; fi
  if diff -u "$exp" "$work/out"; then ok "golden $name"; else bad "golden $name"; fi
}
golden model_jit examples/model_jit.pt --input 'x:f32[1,1,28,28]'
golden model_jit_symbolic examples/model_jit.pt

# Usage errors (exit 2) and model errors (exit 1).
expect_exit() { # CODE WHAT ARGS...
  local code=$1 what=$2; shift 2
  "$NNCC" inspect "$@" >"$work/out" 2>&1
  local rc=$?
  if [ $rc = "$code" ]; then ok "$what"; else bad "$what: exit $rc, wanted $code"; cat "$work/out"; fi
}
expect_exit 2 "no argument"
expect_exit 2 "two models" examples/model_jit.pt examples/model_jit.pt
expect_exit 2 "unknown option" examples/model_jit.pt --frobnicate
expect_exit 2 "--dot without a file" examples/model_jit.pt --dot
expect_exit 2 "bad --input" examples/model_jit.pt --input 'x:q[1]'
expect_exit 2 "--json on a .so" m.so --json
expect_exit 1 "--input naming no input" examples/model_jit.pt --input 'y:f32[1,1,28,28]'
expect_exit 1 "missing archive" "$work/absent.pt"
if "$NNCC" inspect examples/model_jit.pt --input 'y:f32[1]' 2>&1 | grep -q "'y', which is not an input"; then
  ok "--input naming no input: the message"
else bad "--input naming no input: the message"; fi

# --dot: Graphviz accepts it; one cluster per fused group of the final IR.
"$NNCC" inspect examples/model_jit.pt --input 'x:f32[1,1,28,28]' --dot "$work/m.dot" >/dev/null || bad "--dot"
groups=$("$NNCC" examples/model_jit.pt --emit=ir --input 'x:f32[1,1,28,28]' | grep -o 'group([0-9]*)' | sort -u | wc -l)
clusters=$(grep -c 'subgraph cluster_' "$work/m.dot")
if [ "$groups" -gt 0 ] && [ "$groups" = "$clusters" ]; then ok "--dot: $clusters clusters = fused groups"
else bad "--dot: $clusters clusters, $groups fused groups"; fi
if command -v dot >/dev/null; then
  if dot -Tsvg "$work/m.dot" -o "$work/m.svg" && grep -q '<svg' "$work/m.svg"; then ok "dot -Tsvg accepts --dot"
  else bad "dot -Tsvg rejects --dot"; fi
else
  echo "SKIP dot -Tsvg (Graphviz not installed)"
fi

# --json against torch.
py=""
for cand in "${NNCC_PYTHON:-}" /usr/bin/python3; do
  [ -n "$cand" ] && [ -x "$cand" ] && "$cand" -c 'import torch, torchvision' 2>/dev/null && { py=$cand; break; }
done
if [ -z "$py" ]; then
  echo "SKIP --json against torch (no python3 with torch and torchvision)"
else
  "$py" - "$NNCC" "$NNCC_SRC/examples/model_jit.pt" "$work" <<'PY'
import json, subprocess, sys
import torch, torchvision
nncc, example, work = sys.argv[1:4]
fails = 0
def check(cond, what):
    global fails
    print(("PASS " if cond else "FAIL ") + what)
    fails += not cond

def inspect(path, *args):
    out = subprocess.run([nncc, "inspect", path, "--json", *args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)

def torch_counts(model, x):
    """Parameters per module and MACs per conv/linear, from forward hooks."""
    macs = {}
    def hook(name):
        def f(mod, inp, out):
            if isinstance(mod, torch.nn.Conv2d):
                kh, kw = mod.kernel_size
                macs[name] = out.numel() * (mod.in_channels // mod.groups) * kh * kw
            else:
                macs[name] = out.numel() * mod.in_features
        return f
    for name, mod in model.named_modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            mod.register_forward_hook(hook(name))
    with torch.no_grad():
        model(x)
    params = {}
    for name, mod in model.named_modules():
        n = sum(p.numel() for p in mod.parameters(recurse=False))
        if n:
            params[name] = n
    return params, macs

def compare(tag, j, model, x):
    params, macs = torch_counts(model, x)
    total = sum(p.numel() for p in model.parameters())
    check(j["params"] == total, "%s: total params %d (torch %d)" % (tag, j["params"], total))
    check(j["total"]["layer_params"] == total, "%s: every parameter is read by a layer" % tag)
    got = {}
    for r in j["layers"]:
        if r["params"]:
            got[r["layer"]] = got.get(r["layer"], 0) + r["params"]
    check(got == params, "%s: params per layer match torch's modules" % tag)
    got_macs = {}
    for r in j["layers"]:
        if r["op"] in ("convolution", "linear"):
            got_macs[r["layer"]] = got_macs.get(r["layer"], 0) + r["macs"]
    check(got_macs == macs, "%s: MACs of every convolution and linear match the formula" % tag)
    check(j["total"]["macs"] == sum(macs.values()),
          "%s: total MACs %d (torch formula %d)" % (tag, j["total"]["macs"], sum(macs.values())))
    conv_lin = [r for r in j["layers"] if r["op"] in ("convolution", "linear")]
    check(all(r["flops"] >= 2 * r["macs"] for r in conv_lin), "%s: FLOPs >= 2 x MACs" % tag)
    return params, macs

# The bundled example, loaded back by torch (its modules keep their names).
m = torch.jit.load(example)
x = torch.randn(1, 1, 28, 28)
j = inspect(example, "--input", "x:f32[1,1,28,28]")
params = {n: sum(p.numel() for p in mod.parameters(recurse=False)) for n, mod in m.named_modules()}
params = {k: v for k, v in params.items() if v}
got = {}
for r in j["layers"]:
    if r["params"]:
        got[r["layer"]] = got.get(r["layer"], 0) + r["params"]
check(j["params"] == sum(p.numel() for p in m.parameters()), "model_jit: total params")
check(got == params, "model_jit: params per layer")
check(j["total"]["macs"] == 97536 and j["total"]["flops"] == 209258, "model_jit: totals")
check(j["input_shapes"] == ["x:f32[1,1,28,28]"], "model_jit: input shapes")
check([r["output"] for r in j["layers"]][-1] == "f32[1,10]", "model_jit: last output")

# Symbolic totals, evaluated at the static shape, give the static totals.
s = inspect(example)
check(s["input_shapes"] == ["x:f32[B,1,H,W]"], "model_jit symbolic: inferred input " + str(s["input_shapes"]))
env = {"B": 1, "H": 28, "W": 28}
check(eval(s["total"]["macs"], {}, env) == j["total"]["macs"], "model_jit symbolic: MACs at 1x1x28x28")
check(eval(s["total"]["flops"], {}, env) == j["total"]["flops"], "model_jit symbolic: FLOPs at 1x1x28x28")

# torchvision's resnet18 (random weights), traced here.
torch.manual_seed(0)
model = torchvision.models.resnet18().eval()
x = torch.randn(1, 3, 224, 224)
path = work + "/resnet18.pt"
torch.jit.trace(model, x).save(path)
j = inspect(path, "--input", "x:f32[1,3,224,224]")
compare("resnet18", j, model, x)
check(j["params"] == 11689512, "resnet18: 11,689,512 parameters")
check(j["total"]["macs"] == 1814073344, "resnet18: 1,814,073,344 MACs (1.81 G)")
sys.exit(1 if fails else 0)
PY
  if [ $? = 0 ]; then ok "--json against torch"; else bad "--json against torch"; fi
fi

echo "inspect: $pass passed, $fail failed"
[ $fail = 0 ]
