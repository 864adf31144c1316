#!/bin/bash
# inspect.sh — `nncc inspect MODEL.pt`: the layer table of the bundled
# example against exact expected text (tests/inspect/*.expected, static and
# symbolic shapes; NNCC_UPDATE_GOLDEN=1 rewrites them), --json against what
# torch computes (parameters from the module, MACs of every convolution and
# linear layer by formula from forward hooks, for the example and for
# torchvision's resnet18: 11,689,512 parameters, 1,814,073,344 MACs), the
# symbolic totals evaluated at the static shape, --dot accepted by Graphviz
# with one cluster per fused group, and the command's usage errors. For a
# compiled OUT.so: the text and --json (precision, distinct kernels and
# steps against --emit=kernels, arena and weights against --stats, dims,
# symbols and ranges, a --target cuda model's archs when NVRTC is here).
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
expect_exit 2 "--dot on a .so" m.so --dot "$work/x.dot"
expect_exit 2 "--input on a .so" m.so --input 'x:f32[1]'
expect_exit 1 "missing .so, --json" "$work/absent.so" --json
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

# OUT.so: `nncc inspect OUT.so` and its --json against independent counts:
# kernels = distinct kernel names and steps = step lines of --emit=kernels
# (the CUDA kernels: __global__ functions of --emit=cuda), arena and
# weights = --stats, dims and symbols as compiled, the text and the JSON
# saying the same. JSON read by python's json module.
jpy=/usr/bin/python3
[ -x "$jpy" ] || jpy=$(command -v python3)
so_check() { # TAG SO KERNELS-DUMP STATS.json|- PYTHON-ASSERTIONS (j = the JSON, t = text lines)
  local tag=$1 so=$2 dump=$3 stats=$4 asserts=$5
  if ! "$NNCC" inspect "$so" --json >"$work/$tag.json" 2>"$work/err" ||
     ! "$NNCC" inspect "$so" >"$work/$tag.txt" 2>>"$work/err"; then
    bad "$tag: inspect exit"; cat "$work/err"; return
  fi
  "$jpy" - "$work/$tag.json" "$work/$tag.txt" "$dump" "$stats" "$tag" <<PY
import json, re, sys
j = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read().splitlines()
dump = open(sys.argv[3]).read()
stats = json.load(open(sys.argv[4])) if sys.argv[4] != "-" else None
tag = sys.argv[5]
fails = 0
def check(cond, what):
    global fails
    print(("PASS " if cond else "FAIL ") + tag + ": " + what)
    fails += not cond
if j["target"] == "cuda":
    names = re.findall(r"__global__[^(]*?\b(\w+)\s*\(", dump)
    nsteps = None
else:
    names = re.findall(r"^kernel (\w+)\(", dump, re.M)
    nsteps = len(re.findall(r"^step \d+:", dump, re.M))
check(j["kernels"] == len(set(names)),
      "kernels %s = distinct kernels %d" % (j["kernels"], len(set(names))))
if nsteps is not None:
    check(j["steps"] == nsteps, "steps %s = step lines %d" % (j["steps"], nsteps))
check("kernels: %d" % j["kernels"] in t and "steps: %d" % j["steps"] in t, "text: kernels, steps")
check("precision: %s" % j["precision"] in t, "text: precision " + str(j["precision"]))
check(j["format"] == "model.so" and j["compiler"].startswith("nncc "), "format, compiler")
check("compiler: " + j["compiler"] in t and "name: " + j["name"] in t, "text: compiler, name")
check(j["weights_bytes"] >= 0 and "weights: %d bytes" % j["weights_bytes"] in t, "text: weights")
if stats:
    check(j["arena_bytes"] == stats["arena_bytes"],
          "arena_bytes = --stats %d" % stats["arena_bytes"])
    check(j["weights_bytes"] == stats["weights_bytes"],
          "weights_bytes = --stats %d" % stats["weights_bytes"])
feat = [l for l in t if l.startswith("features:")]
check(j["features"] == (feat[0].split()[1:] if feat else []), "features: the text's list")
for k, io in enumerate(j["inputs"]):
    dims = ",".join(str(d) for d in io["dims"])
    check("  input %d: %s: %s[%s]" % (k, io["name"], io["dtype"], dims) in t, "text: input %d" % k)
    check(j["input_shapes"][k] == "%s:%s[%s]" % (io["name"], io["dtype"], dims),
          "input_shapes %d" % k)
$asserts
sys.exit(1 if fails else 0)
PY
  if [ $? = 0 ]; then ok "$tag: inspect OUT.so"; else bad "$tag: inspect OUT.so"; fi
}
ex=examples/model_jit.pt
"$NNCC" $ex -o "$work/s.so" --input 'x:f32[1,1,28,28]' --stats "$work/s.stats" &&
  "$NNCC" $ex --emit=kernels --input 'x:f32[1,1,28,28]' >"$work/s.k" || bad "compiling $ex"
so_check static "$work/s.so" "$work/s.k" "$work/s.stats" '
check(j["name"] == "model_jit" and j["target"] == "cpu" and j["archs"] == [], "name, target, archs")
check(j["precision"] == "f32" and j["runs_here"] is True and j["unusable"] is None,
      "f32, runs here")
check(j["inputs"] == [{"name": "x", "dtype": "f32", "dims": [1, 1, 28, 28]}], "inputs")
check(j["outputs"] == [{"name": "output_0", "dtype": "f32", "dims": [1, 10]}], "outputs")
check(j["symbols"] == [] and j["input_shapes"] == ["x:f32[1,1,28,28]"], "no symbols")
check(j["kernels"] == j["steps"] == 8, "8 kernels in 8 steps")
check(j["cpu"] and "target: cpu, cpu " + j["cpu"] in t, "cpu")'
"$NNCC" $ex -o "$work/b.so" --input 'x:f32[b=1..8,1,28,28]' --precision=bf16 &&
  "$NNCC" $ex --emit=kernels --input 'x:f32[b=1..8,1,28,28]' --precision=bf16 >"$work/b.k" ||
  bad "compiling $ex, bf16"
so_check bf16_ranged "$work/b.so" "$work/b.k" - '
check(j["precision"] == "bf16", "precision bf16")
check(j["inputs"] == [{"name": "x", "dtype": "f32", "dims": ["b", 1, 28, 28]}], "inputs keep f32")
check(j["outputs"] == [{"name": "output_0", "dtype": "f32", "dims": ["b", 10]}], "outputs")
check(j["symbols"] == [{"name": "b", "min": 1, "max": 8}] and "  b: 1..8" in t, "symbol b: 1..8")
check(j["arena_bytes"] is None and "workspace (arena): planned per input shape" in t,
      "arena per shape")'
"$NNCC" $ex -o "$work/h.so" --precision=fp16 &&
  "$NNCC" $ex --emit=kernels --precision=fp16 >"$work/h.k" || bad "compiling $ex, fp16"
so_check f16_symbolic "$work/h.so" "$work/h.k" - '
check(j["precision"] == "f16", "precision f16")
check(j["input_shapes"] == ["x:f32[B,1,H,W]"], "input_shapes as inspect MODEL.pt infers them")
check(j["symbols"] == [{"name": n, "min": 1, "max": None} for n in "BHW"],
      "symbols B H W, unbounded")
check("  H: 1.." in t, "text: an unbounded symbol")'
# Repeated layers share one kernel: fewer kernels than steps.
if "$jpy" -c 'import torch' 2>/dev/null; then
  "$jpy" -c '
import sys, torch
torch.manual_seed(0)
layers = []
for _ in range(3):
    layers += [torch.nn.Linear(8, 8), torch.nn.ReLU()]
model = torch.nn.Sequential(*layers).eval()
torch.jit.trace(model, torch.randn(2, 8)).save(sys.argv[1])' "$work/rep.pt" &&
    "$NNCC" "$work/rep.pt" -o "$work/rep.so" --input 'input:f32[2,8]' --stats "$work/rep.stats" &&
    "$NNCC" "$work/rep.pt" --emit=kernels --input 'input:f32[2,8]' >"$work/rep.k" ||
    bad "compiling rep.pt"
  so_check shared_kernels "$work/rep.so" "$work/rep.k" "$work/rep.stats" '
check(j["kernels"] == 1 and j["steps"] == 3, "3 identical layers: 1 kernel, 3 steps")'
else
  echo "SKIP shared kernels (no python3 with torch to trace the model)"
fi
# --target cuda (needs NVRTC to compile, not a GPU: inspect describes a
# model this machine can't run).
if "$NNCC" --version | grep -q '^NVRTC: found'; then
  "$NNCC" $ex -o "$work/c.so" --target cuda --cuda-arch=sm_75,sm_90 --input 'x:f32[1,1,28,28]' &&
    "$NNCC" $ex --target cuda --emit=cuda --input 'x:f32[1,1,28,28]' >"$work/c.cu" ||
    bad "--target cuda"
  so_check cuda "$work/c.so" "$work/c.cu" - '
check(j["target"] == "cuda" and j["archs"] == ["sm_75", "sm_90"],
      "target cuda, archs " + str(j["archs"]))
check("target: cuda, archs sm_75,sm_90" in t, "text: archs")
check(j["features"] == [] and j["precision"] == "f32", "no CPU features, f32")
check(j["runs_here"] == (j["unusable"] is None) and
      (j["runs_here"] or "runs here: no (%s)" % j["unusable"] in t), "runs_here and its reason")'
else
  echo "SKIP inspect of a --target cuda model (no NVRTC)"
fi

# Origin notes in model.json-era archives (tests/inspect/make_legacy_debug.py
# writes them as PyTorch 1.2 did: debug/X.pkl named by model.json): a
# located error gets the user's file and line; no records, or unreadable
# ones, mean no note; the records are the ones model.json names, whatever
# their file is called.
if "$jpy" "$NNCC_SRC/tests/inspect/make_legacy_debug.py" "$work/leg"; then
  origin() { # NAME EXPECTED-NOTE ("" = none)
    "$NNCC" "$work/leg/$1.pt" -o "$work/leg/$1.so" 2>"$work/leg/$1.err"
    local rc=$? loc note
    loc=$(grep -c "^nncc: error: $1/code/$1.py:5:10: unsupported op 'aten::frobnicate'" \
          "$work/leg/$1.err")
    note=$(grep '^nncc: note: ' "$work/leg/$1.err")
    if [ $rc = 1 ] && [ "$loc" = 1 ] && [ "$note" = "$2" ]; then ok "legacy origin: $1"
    else bad "legacy origin: $1 (exit $rc)"; cat "$work/leg/$1.err"; fi
  }
  origin traced "nncc: note: traced from /home/u/models/net.py:23"
  origin scripted "nncc: note: scripted from /home/u/models/net.py:42"
  origin renamed "nncc: note: traced from /home/u/models/net.py:23"
  origin unnamed ""
  origin nodebug ""
  origin badpkl ""
else
  bad "make_legacy_debug.py"
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
