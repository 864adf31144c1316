"""Variants of the bundled example archive in the forms older and newer
PyTorch releases write, for tests/generations.sh. Python stdlib only.
Usage: make_generations.py EXAMPLE.pt OUTDIR

Every variant computes exactly what the original computes, so nncc's output
on it must equal nncc's output on the original:
  v1 .. v10      the `version` entry set to 1..10 (1.3 wrote 1, 1.13 writes 3,
                 upgrader-era files up to 10)
  data_version   the version in `.data/version` (torch.package era) plus
                 `.data/serialization_id` and `byteorder`
  op_version_set an `op_version_set = 1` header in every code file (1.3-1.5)
  module_names   every class renamed `Module` (1.3-era traces)
  old_spellings  pre-1.7 op spellings: 12-argument _convolution,
                 addmm(b, x, t(w), beta=1, alpha=1) for linear,
                 threshold_(x, 0., 0.) for relu, max_pool2d_with_indices with
                 its tuple unpacked, add(x, y, alpha=1) (as (h + h) - h)
  zip64          entries stored with zip64 extra fields forced
And two that must be refused:
  big_endian     byteorder "big"
  bad_version    a `version` of -2 (refused with a located error)
  v99            a version with no known meaning (accepted: entries decide)
"""
import os
import re
import sys
import zipfile


def rewrite(src, dst, edit, force_zip64=False, extra=None):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", allowZip64=True) as zout:
        prefix = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            data = edit(info.filename[len(prefix) + 1:], zin.read(info.filename))
            if data is None:
                continue
            if force_zip64:
                with zout.open(info, "w", force_zip64=True) as f:
                    f.write(data)
            else:
                zout.writestr(info, data)
        for name, data in (extra or {}).items():
            zout.writestr(prefix + "/" + name, data)


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    p = lambda n: os.path.join(out, n + ".pt")

    for v in list(range(1, 11)) + [99]:
        rewrite(src, p("v%d" % v), lambda n, d, v=v: b"%d\n" % v if n == "version" else d)

    rewrite(src, p("data_version"), lambda n, d: None if n == "version" else d,
            extra={".data/version": b"3\n", ".data/serialization_id": b"1234567890\n",
                   "byteorder": b"little"})
    rewrite(src, p("big_endian"), lambda n, d: d, extra={"byteorder": b"big"})
    rewrite(src, p("bad_version"), lambda n, d: b"-2\n" if n == "version" else d)

    def ovs(n, d):
        if n.startswith("code/") and n.endswith(".py"):
            return b"op_version_set = 1\n" + d
        return d
    rewrite(src, p("op_version_set"), ovs)

    # Rename every class to Module, as 1.3-era traces did. Real archives put
    # each such class in its own (mangled) file, so only single-class files
    # are renamed here, together with every reference to them.
    with zipfile.ZipFile(src) as z:
        prefix = z.namelist()[0].split("/")[0]
        renames = []
        for n in z.namelist():
            rel = n[len(prefix) + 1:]
            if rel.startswith("code/") and rel.endswith(".py"):
                classes = re.findall(rb"^class (\w+)\(Module\)", z.read(n), re.M)
                if len(classes) == 1 and classes[0] != b"Module":
                    mod = rel[len("code/"):-3].replace("/", ".").encode()
                    renames.append((mod, classes[0]))

    def module_names(n, d):
        for mod, cls in renames:
            if n.startswith("code/") and n.endswith(".py"):
                d = d.replace(mod + b"." + cls + b"\n", mod + b".Module\n")
                d = d.replace(mod + b"." + cls + b",", mod + b".Module,")
                if n[len("code/"):-3].replace("/", ".").encode() == mod:
                    d = d.replace(b"class " + cls + b"(Module)", b"class Module(Module)")
            if n == "data.pkl":
                d = d.replace(b"c" + mod + b"\n" + cls + b"\n", b"c" + mod + b"\nModule\n")
        return d
    rewrite(src, p("module_names"), module_names)

    def old(n, d):
        if not (n.startswith("code/") and n.endswith(".py")):
            return d
        # 13-argument _convolution → 12 (drop allow_tf32).
        d = re.sub(rb"(torch\._convolution\([^\n]*), True\)", rb"\1)", d)
        d = d.replace(b"return torch.linear(input, weight, bias)",
                      b"return torch.addmm(bias, input, torch.t(weight), beta=1, alpha=1)")
        d = d.replace(b"return torch.relu(argument_1)",
                      b"return torch.threshold_(argument_1, 0., 0.)")
        d = d.replace(b"x = torch.max_pool2d(argument_1, [2, 2], [2, 2], [0, 0], [1, 1])",
                      b"x, _0 = torch.max_pool2d_with_indices(argument_1, [2, 2], [2, 2], [0, 0], [1, 1], False)")
        d = d.replace(b"_0 = (conv2).forward((conv1).forward(x, ), )",
                      b"_h = (conv1).forward(x, )\n    "
                      b"_0 = (conv2).forward(torch.sub(torch.add(_h, _h, alpha=1), _h, alpha=1), )")
        return d
    rewrite(src, p("old_spellings"), old)
    rewrite(src, p("zip64"), lambda n, d: d, force_zip64=True)


if __name__ == "__main__":
    main()
