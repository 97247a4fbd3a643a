#!/usr/bin/env python3
"""Writes the small PyTorch checkpoints under tests/data/pytorch/ that test_pytorch reads.

Run from anywhere: `python3 tests/data/pytorch/make_inputs.py`. The outputs are committed, so
CI needs neither Python nor torch. Pickles are assembled opcode by opcode (as torch.save
protocol 2 writes them) and zips by hand, so that broken variants can be built precisely:
  ok_*.pt   open, and their values are checked by the test;
  bad_*.pt  are refused; the test holds each to its error kind and message.
No file here is derived from ../shared.
"""

import pathlib
import struct
import zipfile
import zlib

OUT = pathlib.Path(__file__).resolve().parent


# ---- pickle opcodes ----
def proto(n):
    return b"\x80" + bytes([n])


def glob(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def uni(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def num(n):
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    length = (n.bit_length() + 8) // 8
    return b"\x8a" + bytes([length]) + n.to_bytes(length, "little", signed=True)


def tup(*parts):
    return b"(" + b"".join(parts) + b"t"


def storage(kind, key, numel, view=None):
    items = [uni("storage"), glob("torch", kind), uni(key), uni("cpu"), num(numel)]
    if view is not None:
        items.append(tup(uni(view[0]), num(view[1]), num(view[2])) if view else b"N")
    return tup(*items) + b"Q"


def tensor(store, offset, shape, stride):
    return (glob("torch._utils", "_rebuild_tensor_v2") + b"(" + store + num(offset) + tup(*map(num, shape)) +
            tup(*map(num, stride)) + b"\x89" + glob("collections", "OrderedDict") + b")R" + b"t" + b"R")


def state_dict(items):
    body = b"".join(uni(k) + v for k, v in items)
    return glob("collections", "OrderedDict") + b")R" + b"(" + body + b"u"


def pickle_of(obj):
    return proto(2) + obj + b"."


# ---- zip ----
def make_zip(entries, zip64=False, deflate=()):
    """entries: list of (name, bytes). Stored, 64-byte aligned like torch; ZIP64 records on request."""
    out = bytearray()
    central = bytearray()
    for name, data in entries:
        nb = name.encode()
        method = 8 if name in deflate else 0
        payload = zlib.compress(data)[2:-4] if method else data
        crc = zlib.crc32(data)
        offset = len(out)
        pad = (-(offset + 30 + len(nb) + 4)) % 64
        extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(payload), len(data), len(nb),
                           len(extra)) + nb + extra + payload
        if zip64:
            cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(payload), offset)
            sizes = (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        else:
            cextra = b""
            sizes = (len(payload), len(data), offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 20, 0, method, 0, 0, crc, sizes[0], sizes[1],
                               len(nb), len(cextra), 0, 0, 0, 0, sizes[2]) + nb + cextra
    cd_offset = len(out)
    out += central
    count = len(entries)
    if zip64:
        end64 = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, len(central), cd_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, end64, 1)
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), cd_offset, 0)
    return bytes(out)


def checkpoint(prefix, pkl, records, **kw):
    entries = [(prefix + "data.pkl", pkl), (prefix + "byteorder", b"little")]
    entries += [(prefix + "data/" + k, v) for k, v in records]
    entries.append((prefix + "version", b"3\n"))
    return make_zip(entries, **kw)


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


# Storage "0": 8 floats 0..7; the tensors view it in several ways.
STORE0 = f32(*[float(i) for i in range(8)])


def views_pickle():
    s0 = storage("FloatStorage", "0", 8)
    return pickle_of(state_dict([
        ("w", tensor(s0, 0, (2, 3), (3, 1))),               # contiguous, elements 0..5
        ("w_t", tensor(s0, 0, (3, 2), (1, 3))),             # its transpose: non-contiguous
        ("tail", tensor(s0, 3, (2,), (2,))),                # elements 3 and 5
        ("row", tensor(s0, 6, (1, 2), (7, 1))),             # contiguous despite a stride on a size-1 dim
        ("scalar", tensor(s0, 7, (), ())),                  # 0-d
        ("ids", tensor(storage("LongStorage", "1", 3), 0, (3,), (1,))),
        ("mask", tensor(storage("BoolStorage", "2", 2), 0, (2,), (1,))),
        ("h", tensor(storage("HalfStorage", "3", 3), 1, (2,), (1,))),
    ]))


VIEWS_RECORDS = [("0", STORE0), ("1", struct.pack("<3q", -1, 0, 7)), ("2", b"\x01\x00"),
                 ("3", struct.pack("<3H", 0x3C00, 0x4000, 0xC200))]


def legacy(obj_pickle, keys, storages, truncate=0):
    out = proto(2) + b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little") + b"."
    out += proto(2) + num(1001) + b"."
    out += proto(2) + b"}(" + uni("protocol_version") + num(1001) + uni("little_endian") + b"\x88" + \
        uni("type_sizes") + b"}(" + uni("short") + num(2) + uni("int") + num(4) + uni("long") + num(4) + b"uu."
    out += obj_pickle
    out += proto(2) + b"](" + b"".join(uni(k) for k in keys) + b"e."
    for numel, data in storages:
        out += struct.pack("<q", numel) + data
    return out[:len(out) - truncate] if truncate else out


def legacy_pickle():
    root = "94000"
    return pickle_of(state_dict([
        ("a", tensor(storage("FloatStorage", root, 8, view=None), 0, (2, 2), (2, 1))),
        ("b", tensor(storage("FloatStorage", root, 8, view=("94016", 4, 4)), 1, (3,), (1,))),  # elements 5..7
        ("c", tensor(storage("DoubleStorage", "95000", 2, view=()), 0, (2,), (1,))),
    ]))


def write(name, data):
    (OUT / name).write_bytes(data)


def main():
    views = views_pickle()
    write("ok_views.pt", checkpoint("archive/", views, VIEWS_RECORDS))
    write("ok_views_zip64.pt", checkpoint("my_model/", views, VIEWS_RECORDS, zip64=True))

    # Protocol 4 opcodes (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, BINGET) inside a
    # training checkpoint {"epoch": 3, "state_dict": {...}, "optimizer": {"lr": 0.5, "state": {0: [...]}}}.
    p4 = (b"\x80\x04\x95" + struct.pack("<Q", 0) + b"}\x94(" + b"\x8c\x05epoch\x94K\x03" +
          b"\x8c\x0astate_dict\x94" + b"\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94" +
          b"(\x8c\x01w\x94" + tensor(storage("FloatStorage", "0", 8), 2, (2, 2), (2, 1)) + b"\x94" +
          b"\x8c\x04tied\x94h\x08u" +
          b"\x8c\x09optimizer\x94}\x94(\x8c\x02lrG" + struct.pack(">d", 0.5) +
          b"\x8c\x05state}K\x00](\x88N\x89esu" +
          b"u.")
    write("ok_checkpoint_protocol4.pt", checkpoint("ckpt/", p4, [("0", STORE0)]))

    legacy_obj = legacy_pickle()
    legacy_storages = [(8, STORE0), (2, struct.pack("<2d", 1.5, -2.25))]
    write("ok_legacy.pt", legacy(legacy_obj, ["94000", "95000"], legacy_storages))

    good = checkpoint("archive/", views, VIEWS_RECORDS)
    cd = good.rfind(b"PK\x01\x02", 0, good.rfind(b"PK\x05\x06"))
    first_cd = good.find(b"PK\x01\x02")
    write("bad_truncated_central_directory.pt", good[:first_cd + 60])
    # The local header offset of the second entry (data.pkl is first) moved past the end of the file.
    second = good.find(b"PK\x01\x02", first_cd + 4)
    broken = bytearray(good)
    broken[second + 42:second + 46] = struct.pack("<I", len(good) + 4096)
    write("bad_entry_offset_past_end.pt", bytes(broken))
    assert cd > 0
    write("bad_deflate_entry.pt", make_zip([("archive/data.pkl", views)] +
                                           [("archive/data/" + k, v) for k, v in VIEWS_RECORDS],
                                           deflate={"archive/data/0"}))
    write("bad_missing_data_pkl.pt", make_zip([("archive/data/" + k, v) for k, v in VIEWS_RECORDS]))
    write("bad_missing_storage.pt", checkpoint("archive/", views, VIEWS_RECORDS[:3]))
    write("bad_storage_too_small.pt", checkpoint(
        "archive/", pickle_of(state_dict([("w", tensor(storage("FloatStorage", "0", 8), 0, (4, 4), (4, 1)))])),
        [("0", STORE0)]))
    write("bad_record_shorter_than_storage.pt", checkpoint(
        "archive/", pickle_of(state_dict([("w", tensor(storage("FloatStorage", "0", 64), 0, (8,), (1,)))])),
        [("0", STORE0)]))
    write("bad_stride_out_of_bounds.pt", checkpoint(
        "archive/", pickle_of(state_dict([("w", tensor(storage("FloatStorage", "0", 8), 0, (2, 3), (3, 3)))])),
        [("0", STORE0)]))
    write("bad_absurd_dims.pt", checkpoint(
        "archive/", pickle_of(state_dict([("w", tensor(storage("FloatStorage", "0", 8), 0, (2**40, 2**40),
                                                       (2**40, 1)))])), [("0", STORE0)]))
    write("bad_huge_offset.pt", checkpoint(
        "archive/", pickle_of(state_dict([("w", tensor(storage("FloatStorage", "0", 8), 2**62, (2,), (1,)))])),
        [("0", STORE0)]))
    write("bad_os_system.pt", checkpoint(
        "archive/", pickle_of(glob("os", "system") + tup(uni("echo pwned")) + b"R"), [("0", STORE0)]))
    write("bad_big_endian.pt", make_zip([("archive/data.pkl", views), ("archive/byteorder", b"big")] +
                                        [("archive/data/" + k, v) for k, v in VIEWS_RECORDS]))
    write("bad_torchscript.pt", make_zip([("archive/data.pkl", views), ("archive/constants.pkl", b"\x80\x02)."),
                                          ("archive/code/__torch__.py", b"")]))
    write("bad_legacy_truncated.pt", legacy(legacy_obj, ["94000", "95000"], legacy_storages, truncate=5))
    write("bad_legacy_wrong_count.pt", legacy(legacy_obj, ["94000", "95000"], [(7, STORE0), legacy_storages[1]]))
    write("bad_not_a_list.pt", checkpoint("archive/", pickle_of(b"]" + uni("x") + b"a"), []))


if __name__ == "__main__":
    main()
