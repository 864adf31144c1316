"""Writes the malformed inputs of tests/errors.sh into a folder.

Each case starts from the bundled example archive (examples/model_jit.pt)
and breaks one thing, using only Python's standard library so the test
needs no torch. Usage: make_cases.py EXAMPLE.pt OUTDIR
"""
import os
import sys
import zipfile


def rewrite(src, dst, edit):
    """Copies zip src to dst, passing every entry through edit(name, data)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            zout.writestr(info, data)


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    raw = open(src, "rb").read()
    root = "model_jit/code/__torch__.py"

    # Not a zip at all, and a zip cut short.
    open(os.path.join(out, "not_zip.pt"), "wb").write(b"def forward(self, x):\n  return x\n")
    open(os.path.join(out, "truncated.pt"), "wb").write(raw[: len(raw) // 2])

    # data.pkl names a global that must never be executed.
    evil = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03."
    rewrite(src, os.path.join(out, "evil_global.pt"),
            lambda n, d: evil if n.endswith("/data.pkl") else d)

    # A syntax error in the code of the root module.
    def syntax(n, d):
        if n == root:
            return d.replace(b"input = torch.view(_0, [int(_1), -1])",
                             b"input = torch.view(_0, [int(_1), -1]")
        return d
    rewrite(src, os.path.join(out, "syntax_error.pt"), syntax)

    # Two unsupported ops in two files: both must be reported.
    def unsupported(n, d):
        if n == root:
            return d.replace(b"torch.view(", b"torch.frobnicate(")
        if n.endswith("nn/modules/activation.py"):
            return d.replace(b"torch.relu(", b"torch.relu_tangent(")
        return d
    rewrite(src, os.path.join(out, "unsupported_ops.pt"), unsupported)

    # A near miss of a supported op name gets a suggestion.
    def near_miss(n, d):
        if n.endswith("nn/modules/activation.py"):
            return d.replace(b"torch.relu(", b"torch.relo(")
        return d
    rewrite(src, os.path.join(out, "near_miss.pt"), near_miss)

    # Debug info that is garbage, or absent: the error stays, without the
    # note naming the user's file.
    def bad_debug(n, d):
        if n == root:
            return d.replace(b"torch.view(", b"torch.frobnicate(")
        if n == root + ".debug_pkl":
            return d[: len(d) // 2]
        return d
    rewrite(src, os.path.join(out, "bad_debug_pkl.pt"), bad_debug)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(os.path.join(out, "no_debug_pkl.pt"), "w") as zout:
        for info in zin.infolist():
            if info.filename.endswith(".debug_pkl"):
                continue
            data = zin.read(info.filename)
            if info.filename == root:
                data = data.replace(b"torch.view(", b"torch.frobnicate(")
            zout.writestr(info, data)

    # An in-place relu: computed out of place, a remark with -Wall only.
    def inplace(n, d):
        if n.endswith("nn/modules/activation.py"):
            return d.replace(b"torch.relu(", b"torch.relu_(")
        return d
    rewrite(src, os.path.join(out, "inplace.pt"), inplace)

    # The input only reaches the convolutions through a view, which says
    # nothing of its rank: without --input it cannot be inferred.
    def viewed_input(n, d):
        if n == root:
            return d.replace(b"(conv1).forward(x, )",
                             b"(conv1).forward(torch.view(x, [1, 1, 28, 28]), )")
        return d
    rewrite(src, os.path.join(out, "cannot_infer.pt"), viewed_input)

    # A weights-only torch.save zip: no code to compile.
    def weights_only(n, d):
        return d
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(os.path.join(out, "weights_only.pt"), "w") as zout:
        for info in zin.infolist():
            if "/code/" in info.filename or info.filename.endswith("constants.pkl"):
                continue
            zout.writestr(info, zin.read(info.filename))

    # A storage entry missing from the archive.
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(os.path.join(out, "missing_storage.pt"), "w") as zout:
        for info in zin.infolist():
            if info.filename == "model_jit/data/4":
                continue
            zout.writestr(info, zin.read(info.filename))


if __name__ == "__main__":
    main()
