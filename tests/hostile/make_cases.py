"""Writes the hostile inputs of tests/hostile.sh into a folder.

Every case is a model file built from the bundled example archive
(examples/model_jit.pt) with one thing made hostile: a cut at some section
of the zip, a lie in a header (CRC, sizes of 2^63, a terabyte-sized claim
over a few bytes), overlapping entries, a pickle nested a million levels
deep, out-of-range memo indices, tensors reaching outside their storage,
dims whose product overflows int64, a code file of a million nested
parentheses, and so on. The files are small: they carry claims, not
content. Only Python's standard library is used, so the test needs no
torch.

The zips are written by the small writer below rather than by zipfile, so
that every field (sizes, offsets, the zip64 records, the order of the
central directory) can be set to exactly the lie a case needs.

Usage: make_cases.py EXAMPLE.pt OUTDIR   (writes OUTDIR/CASE.pt, one per case)
"""
import os
import pickletools
import struct
import sys
import zipfile
import zlib

ROOT = "model_jit/"
CODE = ROOT + "code/__torch__.py"
PKL = ROOT + "data.pkl"


# ---- a zip writer with every field under control ----------------------------

class Entry:
    """One zip entry. `data` is what the entry holds; the other fields
    default to the truth and can be overridden with lies."""

    def __init__(self, name, data, method=0):
        self.name = name.encode()
        self.data = data
        self.method = method
        self.comp = data if method == 0 else deflate(data)
        self.crc = zlib.crc32(data)
        self.usize = len(data)
        self.csize = len(self.comp)
        self.zip64 = False        # sizes in a zip64 extra field
        self.header_off = None    # set by build(); may be overridden after


def deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def local_header(e):
    if e.zip64:
        extra = struct.pack("<HHQQ", 1, 16, e.usize, e.csize)
        us, cs = 0xFFFFFFFF, 0xFFFFFFFF
    else:
        extra, us, cs = b"", e.usize, e.csize
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if e.zip64 else 20, 0,
                       e.method, 0, 0x21, e.crc, cs, us, len(e.name),
                       len(extra)) + e.name + extra


def central_header(e):
    if e.zip64:
        extra = struct.pack("<HHQQQ", 1, 24, e.usize, e.csize, e.header_off)
        us, cs, off = 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF
    else:
        extra, us, cs, off = b"", e.usize, e.csize, e.header_off
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45 if e.zip64 else 20,
                       45 if e.zip64 else 20, 0, e.method, 0, 0x21, e.crc, cs,
                       us, len(e.name), len(extra), 0, 0, 0, 0,
                       off) + e.name + extra


def layout(entries):
    """Local headers and data, in order; sets every entry's header_off."""
    out = b""
    for e in entries:
        e.header_off = len(out)
        out += local_header(e) + e.comp
    return out


def directory(entries, body_len, zip64=False, cd_order=None):
    """The central directory (in cd_order, default archive order) and the
    end records for a body of body_len bytes."""
    cd = b"".join(central_header(e) for e in (cd_order or entries))
    n = len(cd_order or entries)
    end = b""
    if zip64:
        rec_off = body_len + len(cd)
        end += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n,
                           len(cd), body_len)
        end += struct.pack("<IIQI", 0x07064B50, 0, rec_off, 1)
        end += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF,
                           0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        end += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(cd),
                           body_len, 0)
    return cd + end


def build(entries, zip64=False, cd_order=None):
    body = layout(entries)
    return body + directory(entries, len(body), zip64, cd_order)


def example_entries(path):
    """The example's entries (deflated where the example deflates)."""
    with zipfile.ZipFile(path) as z:
        return [Entry(i.filename, z.read(i.filename),
                      8 if i.compress_type == zipfile.ZIP_DEFLATED else 0)
                for i in z.infolist()]


def find(entries, name):
    return next(e for e in entries if e.name == name.encode())


def with_entry(entries, name, data, method=None):
    """Copies entries with `name`'s data replaced (same method unless
    given)."""
    out = []
    for e in entries:
        if e.name == name.encode():
            e = Entry(name, data, e.method if method is None else method)
        else:
            e = Entry(e.name.decode(), e.data, e.method)
        out.append(e)
    return out


# ---- editing data.pkl --------------------------------------------------------

def first_tensor_ops(pkl):
    """Positions of the first tensor's pieces in data.pkl: the storage
    numel op, the offset op, the sizes ops and the strides ops, each as
    (pos, length)."""
    ops = list(pickletools.genops(pkl))
    ends = [p for (_, _, p) in ops[1:]] + [len(pkl)]
    spans = [(op, arg, pos, end - pos) for (op, arg, pos), end in zip(ops, ends)]
    i = next(k for k, s in enumerate(spans) if s[0].name == "BINPERSID")
    ints = lambda k: spans[k][0].name in ("BININT1", "BININT", "BININT2", "LONG1")
    numel = next(k for k in range(i - 1, 0, -1) if ints(k))
    k = i + 1
    while not ints(k):
        k += 1
    offset = k
    groups = []
    k += 1
    for _ in range(2):
        while spans[k][0].name != "MARK":
            k += 1
        k += 1
        g = []
        while ints(k):
            g.append(k)
            k += 1
        groups.append(g)
    span = lambda k: (spans[k][2], spans[k][3])
    return (span(numel), span(offset), [span(k) for k in groups[0]],
            [span(k) for k in groups[1]])


def pint(v):
    """A pickle opcode pushing the int v (BININT or LONG1)."""
    if -2**31 <= v < 2**31:
        return b"J" + struct.pack("<i", v)
    n = (v.bit_length() + 8) // 8
    return b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)


def splice(pkl, edits):
    """Replaces (pos, len) spans of pkl with new bytes; edits may come in
    any order and must not overlap."""
    for (pos, n), new in sorted(edits, key=lambda e: -e[0][0]):
        pkl = pkl[:pos] + new + pkl[pos + n:]
    return pkl


# ---- the cases ----------------------------------------------------------------

def cases(example):
    ents = example_entries(example)
    good = build(ents)
    c = {}

    # Cuts: inside a local header, inside a stored entry's data, inside the
    # central directory, inside the end record, and in a zip64 archive
    # inside the zip64 end record and the locator.
    body = layout(ents)
    big = max(ents, key=lambda e: e.csize)
    c["cut_local_header"] = good[:big.header_off + 17]
    c["cut_data"] = good[:big.header_off + 30 + len(big.name) + big.csize // 2]
    c["cut_central_directory"] = good[:len(body) + 100]
    c["cut_end_record"] = good[:-9]
    z64 = build(ents, zip64=True)
    c["control_zip64"] = z64
    c["cut_zip64_end_record"] = z64[:-22 - 20 - 30]
    c["cut_zip64_locator"] = z64[:-22 - 8]
    # ... and with the end record kept: the locator points past the end.
    c["zip64_locator_outside"] = z64[:-22 - 20] + struct.pack(
        "<IIQI", 0x07064B50, 0, len(z64) * 1000, 1) + z64[-22:]

    # A wrong CRC on data.pkl (stored: only the check can notice).
    e = with_entry(ents, PKL, find(ents, PKL).data)
    find(e, PKL).crc ^= 0x5A5A5A5A
    c["wrong_crc"] = build(e)

    # Sizes of 2^63 (zip64 extra) on data.pkl and on a deflated code file.
    e = with_entry(ents, PKL, find(ents, PKL).data)
    x = find(e, PKL)
    x.zip64, x.usize, x.csize = True, 2**63, 2**63
    c["size_2p63_stored"] = build(e, zip64=True)
    e = with_entry(ents, CODE, find(ents, CODE).data)
    x = find(e, CODE)
    x.zip64, x.usize = True, 2**63
    c["size_2p63_deflated"] = build(e, zip64=True)

    # Zip bombs: a code file of a few hundred bytes claiming a terabyte,
    # and one that really inflates 64 MB of zeros (within deflate's ratio).
    e = with_entry(ents, CODE, find(ents, CODE).data)
    x = find(e, CODE)
    x.zip64, x.usize = True, 2**40
    c["zip_bomb_claim"] = build(e, zip64=True)
    e = with_entry(ents, CODE, b"\0" * (64 << 20))
    c["zip_bomb_real"] = build(e)

    # Overlaps. Two central directory records for one local header (same
    # name, then another name); a stored entry whose data runs over the next
    # entry's local header (CRC and local header agreeing); and an entry
    # whose data runs into the central directory.
    e = with_entry(ents, PKL, find(ents, PKL).data)
    body = layout(e)
    c["overlap_same_header"] = body + directory(e, len(body),
                                                cd_order=e + [find(e, PKL)])
    twin = Entry(ROOT + "data/99", find(e, PKL).data)
    twin.header_off = find(e, PKL).header_off
    c["overlap_shared_header"] = body + directory(e, len(body), cd_order=e + [twin])
    e = [Entry(x.name.decode(), x.data, 0) for x in ents]
    body = layout(e)
    a, b = e[0], e[1]
    grown = body[a.header_off + 30 + len(a.name):b.header_off + 30]
    a.data, a.comp = grown, grown
    a.crc, a.usize, a.csize = zlib.crc32(grown), len(grown), len(grown)
    body = body[:a.header_off] + local_header(a) + body[a.header_off + 30 + len(a.name):]
    c["overlap_next_entry"] = body + directory(e, len(body))
    # The last entry in the file runs 46 bytes into the central directory,
    # over the record of the first entry; its own record comes last.
    e = [Entry(x.name.decode(), x.data, 0) for x in ents]
    last = e[-1]
    order = e[:-1] + [last]
    body = layout(e)
    cd = directory(e, len(body), cd_order=order)
    grown = last.data + cd[:46]
    last.comp, last.crc = grown, zlib.crc32(grown)
    last.usize = last.csize = len(grown)
    body = body[:last.header_off] + local_header(last) + last.data
    c["overlap_central_directory"] = body + directory(e, len(body), cd_order=order)

    # An end record claiming 65535 entries, and one whose directory offset
    # lies past the end.
    c["entry_count_lie"] = good[:-14] + b"\xff\xff\xff\xff" + good[-10:]
    c["cdir_offset_outside"] = good[:-6] + struct.pack("<I", len(good) * 4) + good[-2:]

    # Pickles: 10^6 nested lists, 10^6 MARKs, memo gets out of range.
    deep = b"\x80\x02" + b"]" * 10**6 + b"a" * (10**6 - 1) + b"."
    c["pickle_deep_lists"] = build(with_entry(ents, PKL, deep))
    c["pickle_deep_tuples"] = build(with_entry(ents, PKL, b"\x80\x02" + b"N\x85" + b"\x85" * 10**6 + b"."))
    c["pickle_mark_spam"] = build(with_entry(ents, PKL, b"\x80\x02" + b"(" * 10**6 + b"."))
    c["pickle_memo_get_oob"] = build(with_entry(ents, PKL, b"\x80\x02h\xc8."))
    c["pickle_memo_long_get_oob"] = build(with_entry(ents, PKL, b"\x80\x02j\xff\xff\xff\xff."))
    c["pickle_memo_put_huge"] = build(with_entry(ents, PKL, b"\x80\x02Nr\xff\xff\xff\x7f."))
    c["pickle_binunicode_claim"] = build(with_entry(ents, PKL, b"\x80\x02X\xff\xff\xff\x7fabc."))

    # Tensors: the first one (conv1.weight, 36 floats, sizes [4,1,3,3],
    # strides [9,9,3,1]) reaching outside its storage, dims overflowing.
    pkl = find(ents, PKL).data
    numel, offset, sizes, strides = first_tensor_ops(pkl)
    edit = lambda eds: build(with_entry(ents, PKL, splice(pkl, eds)))
    c["tensor_offset_outside"] = edit([(offset, pint(10**9))])
    c["tensor_offset_negative"] = edit([(offset, pint(-1))])
    c["tensor_stride_outside"] = edit([(strides[0], pint(10**6))])
    c["tensor_stride_negative"] = edit([(strides[3], pint(-1))])
    c["tensor_size_negative"] = edit([(sizes[0], pint(-4))])
    c["tensor_dims_overflow"] = edit([(sizes[0], pint(2**40)), (sizes[1], pint(2**40))])
    c["tensor_dims_overflow_stride0"] = edit(
        [(sizes[0], pint(2**40)), (sizes[1], pint(2**40))] +
        [(st, pint(0)) for st in strides])
    c["tensor_numel_huge_stride0"] = edit(
        [(sizes[0], pint(2**40))] + [(st, pint(0)) for st in strides])
    c["tensor_stride_overflow"] = edit([(strides[0], pint(2**62))])
    c["storage_numel_overflow"] = edit([(numel, pint(2**62))])
    c["storage_numel_negative"] = edit([(numel, pint(-36))])

    # Code: 10^6 nested parentheses, deflated bytes that do not inflate,
    # NUL bytes, one line of 16 MB (deflated to a few KB), blocks nested
    # 3000 deep.
    c["code_nested_parens"] = build(with_entry(
        ents, CODE, b"x = " + b"(" * 10**6 + b"1" + b")" * 10**6 + b"\n"))
    c["code_nested_brackets_open"] = build(with_entry(ents, CODE, b"x = " + b"[" * 10**6))
    e = with_entry(ents, CODE, find(ents, CODE).data)
    x = find(e, CODE)
    x.comp = bytes((i * 37 + 11) & 0xFF for i in range(x.csize))
    c["code_deflate_garbage"] = build(e)
    c["code_nul_bytes"] = build(with_entry(
        ents, CODE, find(ents, CODE).data.replace(b"def forward", b"def forw\0ard")))
    c["code_long_line"] = build(with_entry(
        ents, CODE, b"x = " + b"a" * (16 << 20) + b"\n", method=8))
    # 8 MB of one-byte tokens, deflated to a few KB: the parser's memory
    # must stay bounded.
    c["code_many_tokens"] = build(with_entry(ents, CODE, b"a\n" * (4 << 20), method=8))
    c["code_deep_indent"] = build(with_entry(
        ents, CODE, b"".join(b" " * k + b"if x:\n" for k in range(3000))))

    # Legacy archives (model.json, PyTorch 1.0-1.2): JSON nested a million
    # deep, dims whose product overflows int64, a tensor past its entry.
    def legacy(model_json):
        code = (b"op_version_set = 0\ndef forward(self,\n    x: Tensor) -> Tensor:\n"
                b"  return torch.relu(x)\n")
        return build([Entry("m/version", b"1\n"), Entry("m/model.json", model_json),
                      Entry("m/tensors/0", bytes(64)), Entry("m/code/m.py", code)])

    def tensor_json(dims, strides, offset):
        q = lambda v: "[" + ",".join('"%d"' % x for x in v) + "]"
        return ('{"protoVersion":"3","mainModule":{"torchscriptArena":{"key":"code/m.py"},'
                '"name":"m"},"tensors":[{"dims":%s,"offset":"%d","strides":%s,'
                '"requiresGrad":false,"dataType":"FLOAT","data":{"key":"tensors/0"},'
                '"device":"cpu"}]}' % (q(dims), offset, q(strides))).encode()
    c["control_legacy"] = legacy(tensor_json([4, 4], [4, 1], 0))
    c["json_deep_nesting"] = legacy(b'{"protoVersion":' + b"[" * 10**6)
    c["json_dims_overflow"] = legacy(tensor_json([2**40, 2**40], [0, 0], 0))
    c["json_tensor_outside"] = legacy(tensor_json([4, 4], [4, 1], 10**12))
    return c


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for name, data in cases(src).items():
        with open(os.path.join(out, name + ".pt"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
