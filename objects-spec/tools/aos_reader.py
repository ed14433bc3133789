#!/usr/bin/env python3
"""Independent reader for the aos objects and store format, version 1.

Written from objects-spec/README.md and objects-spec/vectors/ only.
Requires Python 3.11+ and the PyPI packages `blake3` and `zstandard`.

Usage:
    aos_reader.py vectors DIR       check the golden vectors in DIR
    aos_reader.py verify STORE_DIR  verify a store directory (the .aos dir)
    aos_reader.py ids STORE_DIR     print "<id> <kind> <size>" for every object
    aos_reader.py bundle FILE       check a bundle and list its refs
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import sys
import unicodedata
from dataclasses import dataclass, field

import blake3
import zstandard

# --------------------------------------------------------------------------
# §1 data model
#
# Python representation:
#   integer -> int, byte string -> bytes, text -> str, array -> list,
#   map -> Map, boolean -> bool, null -> None, link -> Link

INT_MIN = -(1 << 64)
INT_MAX = (1 << 64) - 1
MAX_DEPTH = 128  # an array, map or link at depth >= 128 is rejected
LINK_TAG = 0xB300


@dataclass(frozen=True)
class Link:
    id: bytes

    def __post_init__(self):
        if not isinstance(self.id, bytes) or len(self.id) != 32:
            raise ValueError("a link is a 32-byte id")

    def __repr__(self):
        return f"Link({id_text(self.id)})"


class Map:
    """A map: pairs kept in canonical order (by encoded key), keys distinct."""

    __slots__ = ("pairs",)

    def __init__(self, pairs=()):
        enc = []
        for k, v in pairs:
            enc.append((encode(k), k, v))
        enc.sort(key=lambda t: t[0])
        for a, b in zip(enc, enc[1:]):
            if a[0] == b[0]:
                raise ValueError("duplicate map key")
        self.pairs = [(k, v) for _, k, v in enc]

    def __eq__(self, other):
        return isinstance(other, Map) and encode(self) == encode(other)

    def __repr__(self):
        return f"Map({self.pairs!r})"


class CborError(Exception):
    """A rejection by the strict decoder: rule name and byte offset (§2)."""

    def __init__(self, rule: str, offset: int):
        super().__init__(f"{rule} at byte offset {offset}")
        self.rule = rule
        self.offset = offset


class ValueModelError(ValueError):
    pass


# --------------------------------------------------------------------------
# §2 canonical CBOR: encoder


def _head(major: int, arg: int) -> bytes:
    if arg < 24:
        return bytes([major << 5 | arg])
    if arg < 0x100:
        return bytes([major << 5 | 24, arg])
    if arg < 0x10000:
        return bytes([major << 5 | 25]) + arg.to_bytes(2, "big")
    if arg < 0x100000000:
        return bytes([major << 5 | 26]) + arg.to_bytes(4, "big")
    return bytes([major << 5 | 27]) + arg.to_bytes(8, "big")


def encode(v) -> bytes:
    out = bytearray()
    _encode(v, 0, out)
    return bytes(out)


def _encode(v, depth: int, out: bytearray) -> None:
    if v is None:
        out.append(0xF6)
    elif v is True:
        out.append(0xF5)
    elif v is False:
        out.append(0xF4)
    elif isinstance(v, int):
        if not INT_MIN <= v <= INT_MAX:
            raise ValueModelError(f"integer out of range: {v}")
        out += _head(0, v) if v >= 0 else _head(1, -1 - v)
    elif isinstance(v, bytes):
        out += _head(2, len(v)) + v
    elif isinstance(v, str):
        try:
            b = v.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueModelError("text contains a surrogate (not a Unicode scalar value)")
        out += _head(3, len(b)) + b
    elif isinstance(v, Link):
        if depth >= MAX_DEPTH:
            raise ValueModelError("value nested too deep")
        out += b"\xd9\xb3\x00\x58\x20" + v.id
    elif isinstance(v, list):
        if depth >= MAX_DEPTH:
            raise ValueModelError("value nested too deep")
        out += _head(4, len(v))
        for item in v:
            _encode(item, depth + 1, out)
    elif isinstance(v, Map):
        if depth >= MAX_DEPTH:
            raise ValueModelError("value nested too deep")
        out += _head(5, len(v.pairs))
        for k, val in v.pairs:  # already in canonical order
            _encode(k, depth + 1, out)
            _encode(val, depth + 1, out)
    else:
        raise ValueModelError(f"not a value: {type(v).__name__}")


# --------------------------------------------------------------------------
# §2 canonical CBOR: strict decoder


class _Decoder:
    def __init__(self, data: bytes):
        self.d = data
        self.n = len(data)

    def head(self, pos: int):
        """Read and check a head at pos. Returns (major, ai, arg, end).

        Checks in the order of §2: truncated, non-shortest-head, then the
        length, indefinite, reserved, float, simple-value and tag checks.
        """
        d, n = self.d, self.n
        if pos >= n:
            raise CborError("truncated", pos)
        ib = d[pos]
        major, ai = ib >> 5, ib & 31
        arg = None
        end = pos + 1
        if ai < 24:
            arg = ai
        elif ai <= 27:
            size = 1 << (ai - 24)
            if end + size > n:
                raise CborError("truncated", pos)
            arg = int.from_bytes(d[end:end + size], "big")
            end += size
        remaining = n - end
        if arg is not None:
            # §2 step 1: shortest form (major types 0-6 only), then the
            # per-type length checks of step 2.
            if major != 7 and ai >= 24:
                if (ai == 24 and arg < 24) or (ai == 25 and arg < 0x100) or \
                   (ai == 26 and arg < 0x10000) or (ai == 27 and arg < 0x100000000):
                    raise CborError("non-shortest-head", pos)
            if major in (2, 3, 4) and arg > remaining:
                raise CborError("length-exceeds-input", pos)
            if major == 5 and 2 * arg > remaining:
                raise CborError("length-exceeds-input", pos)
        if ai == 31:
            raise CborError("indefinite-length", pos)
        if ai >= 28:
            raise CborError("reserved-additional-info", pos)
        if major == 7:
            if ai in (25, 26, 27):
                raise CborError("float", pos)
            if ai not in (20, 21, 22):
                raise CborError("simple-value", pos)
        if major == 6 and arg != LINK_TAG:
            raise CborError("tag", pos)
        return major, ai, arg, end

    def item(self, pos: int, depth: int):
        major, ai, arg, end = self.head(pos)
        if major in (4, 5, 6) and depth >= MAX_DEPTH:
            raise CborError("too-deep", pos)
        if major == 0:
            return arg, end
        if major == 1:
            return -1 - arg, end
        if major == 2:
            return bytes(self.d[end:end + arg]), end + arg
        if major == 3:
            raw = bytes(self.d[end:end + arg])
            try:
                return raw.decode("utf-8"), end + arg
            except UnicodeDecodeError as e:
                raise CborError("invalid-utf8", end + e.start)
        if major == 4:
            items = []
            p = end
            for _ in range(arg):
                v, p = self.item(p, depth + 1)
                items.append(v)
            return items, p
        if major == 5:
            m = Map()
            pairs = []
            prev = None
            p = end
            for _ in range(arg):
                kstart = p
                k, p = self.item(p, depth + 1)
                kenc = self.d[kstart:p]
                if prev is not None:
                    if kenc < prev:
                        raise CborError("unsorted-keys", kstart)
                    if kenc == prev:
                        raise CborError("duplicate-key", kstart)
                prev = kenc
                v, p = self.item(p, depth + 1)
                pairs.append((k, v))
            m.pairs = pairs  # already canonical: checked above
            return m, p
        if major == 6:  # the link tag (other tags rejected in head())
            c = end
            if c >= self.n:
                raise CborError("truncated", c)
            if self.d[c] != 0x58:
                raise CborError("bad-link", c)
            if c + 2 > self.n:
                raise CborError("truncated", c)
            if self.d[c + 1] != 0x20:
                raise CborError("bad-link", c)
            # fewer than 32 id bytes: `truncated` at the content (§2, major 6).
            if c + 2 + 32 > self.n:
                raise CborError("truncated", c)
            return Link(bytes(self.d[c + 2:c + 34])), c + 34
        # major 7: only false/true/null survive head()
        return {20: False, 21: True, 22: None}[ai], end


def decode(data: bytes):
    """Strictly decode exactly one canonical item; raises CborError."""
    data = bytes(data)
    dec = _Decoder(data)
    v, end = dec.item(0, 0)
    if end != len(data):
        raise CborError("trailing-bytes", end)
    return v


def links_of(v, out: list) -> list:
    """Collect every link inside value v (iteratively, no recursion limit)."""
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, Link):
            out.append(x.id)
        elif isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, Map):
            for k, val in x.pairs:
                stack.append(k)
                stack.append(val)
    return out


# --------------------------------------------------------------------------
# §3 JSON mapping


class JsonMappingError(ValueError):
    pass


_INT_RE = re.compile(r"-?(0|[1-9][0-9]*)\Z")
_LINK_RE = re.compile(r"b3:([0-9a-f]{64})\Z")


def _parse_int(s: str):
    if not _INT_RE.match(s) or len(s) > 22:
        raise JsonMappingError(f"integer out of range: {s[:40]}")
    n = int(s)
    if not INT_MIN <= n <= INT_MAX:
        raise JsonMappingError(f"integer out of range: {s}")
    return n


def _parse_float(s: str):
    raise JsonMappingError(f"not an integer: {s}")


def _parse_constant(s: str):
    raise JsonMappingError(f"not JSON: {s}")


def _check_text(s: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonMappingError("string contains an unpaired surrogate escape")
    return s


def _object_hook(pairs):
    names = set()
    for k, _ in pairs:
        _check_text(k)
        if k in names:
            raise JsonMappingError(f"duplicate member name {k!r}")
        names.add(k)
    for _, v in pairs:
        if isinstance(v, str):
            _check_text(v)
    if len(pairs) == 1 and pairs[0][0].startswith("$"):
        name, v = pairs[0]
        if name == "$bytes":
            if not isinstance(v, str):
                raise JsonMappingError("$bytes needs a base64 string")
            try:
                b = base64.b64decode(v.encode("ascii"), validate=True)
            except (ValueError, UnicodeEncodeError):
                raise JsonMappingError("$bytes: invalid base64")
            if base64.b64encode(b).decode("ascii") != v:
                raise JsonMappingError("$bytes: non-canonical base64")
            return b
        if name == "$link":
            if not isinstance(v, str) or not _LINK_RE.match(v):
                raise JsonMappingError("$link needs \"b3:<64 lowercase hex>\"")
            return Link(bytes.fromhex(v[3:]))
        if name == "$map":
            if not isinstance(v, list):
                raise JsonMappingError("$map needs an array of pairs")
            kv = []
            for p in v:
                if not isinstance(p, list) or len(p) != 2:
                    raise JsonMappingError("$map needs an array of [key, value] pairs")
                kv.append((p[0], p[1]))
            try:
                return Map(kv)
            except ValueError as e:
                raise JsonMappingError(f"$map: {e}")
        raise JsonMappingError(f"unknown extension {name!r}")
    return Map(pairs)


def json_parse(text: str | bytes):
    """Parse JSON text into a value via the §3 mapping."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JsonMappingError(f"JSON text is not UTF-8: {e}")
    try:
        v = json.loads(text, object_pairs_hook=_object_hook, parse_int=_parse_int,
                       parse_float=_parse_float, parse_constant=_parse_constant)
    except JsonMappingError:
        raise
    except RecursionError:
        raise JsonMappingError("JSON nested too deep")
    except ValueError as e:
        raise JsonMappingError(f"invalid JSON: {e}")
    try:
        encode(v)  # range, depth and Unicode-scalar-value checks
    except ValueModelError as e:
        raise JsonMappingError(str(e))
    return v


def json_render(v) -> str:
    """Render a value as JSON text (§3); compact, members in canonical order."""
    encode(v)  # validate first
    out: list[str] = []
    _render(v, out)
    return "".join(out)


def _render(v, out):
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, str):
        out.append(json.dumps(v, ensure_ascii=False))
    elif isinstance(v, bytes):
        out.append('{"$bytes":"' + base64.b64encode(v).decode("ascii") + '"}')
    elif isinstance(v, Link):
        out.append('{"$link":"' + id_text(v.id) + '"}')
    elif isinstance(v, list):
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            _render(x, out)
        out.append("]")
    elif isinstance(v, Map):
        keys = [k for k, _ in v.pairs]
        as_object = all(isinstance(k, str) for k in keys) and not (
            len(keys) == 1 and keys[0].startswith("$"))
        if as_object:
            out.append("{")
            for i, (k, x) in enumerate(v.pairs):
                if i:
                    out.append(",")
                out.append(json.dumps(k, ensure_ascii=False))
                out.append(":")
                _render(x, out)
            out.append("}")
        else:
            out.append('{"$map":[')
            for i, (k, x) in enumerate(v.pairs):
                if i:
                    out.append(",")
                out.append("[")
                _render(k, out)
                out.append(",")
                _render(x, out)
                out.append("]")
            out.append("]}")
    else:
        raise ValueModelError(f"not a value: {type(v).__name__}")


# --------------------------------------------------------------------------
# §4 kinds and ids

KINDS = {1: "blob", 2: "value", 3: "air", 4: "entry", 5: "snapshot", 6: "receipt",
         7: "mapnode"}
KIND_CODES = {name: code for code, name in KINDS.items()}
ACTIVE_KINDS = {1, 2}


def object_id(kind: str, payload: bytes) -> bytes:
    return blake3.blake3(b"aos:" + kind.encode("ascii") + b"\x00" + payload).digest()


def id_text(i: bytes) -> str:
    return "b3:" + i.hex()


def parse_id_text(s: str) -> bytes | None:
    m = _LINK_RE.match(s)
    return bytes.fromhex(m.group(1)) if m else None


# --------------------------------------------------------------------------
# §5-8 store reader

FORMAT_BYTES = b"aos store 1\n"
HEX62 = re.compile(r"[0-9a-f]{62}\Z")
HEX2 = re.compile(r"[0-9a-f]{2}\Z")
PACK_RE = re.compile(r"pack-([0-9a-f]{64})\.(pack|idx)\Z")
REF_COMPONENT = re.compile(r"[A-Za-z0-9_.+@=-]+\Z")
IDX_FIXED = 4 + 4 + 8 + 1024 + 32 + 32  # header, fan-out, C, checksum


def valid_ref_name(name: str) -> bool:
    if len(name.encode()) > 255 or not name.startswith("refs/"):
        return False
    comps = name.split("/")
    if len(comps) < 2:
        return False
    for c in comps:
        if not c or c in (".", "..") or c.startswith(".") or c.endswith(".lock"):
            return False
        if not REF_COMPONENT.match(c):
            return False
    return True


class StoreError(Exception):
    pass


def decompress_stored(encoding: int, stored: bytes, size: int) -> bytes:
    """§6: raw or exactly one zstd frame decompressing to exactly `size` bytes."""
    if encoding == 0:
        if len(stored) != size:
            raise StoreError(f"raw stored length {len(stored)} != payload size {size}")
        return stored
    if encoding == 1:
        try:
            dobj = zstandard.ZstdDecompressor().decompressobj()
            out = dobj.decompress(stored)
        except zstandard.ZstdError as e:
            raise StoreError(f"zstd: {e}")
        if not dobj.eof:
            raise StoreError("zstd frame is incomplete")
        if dobj.unused_data:
            raise StoreError(f"{len(dobj.unused_data)} bytes after the zstd frame")
        if len(out) != size:
            raise StoreError(f"zstd frame decompresses to {len(out)} bytes, header says {size}")
        return out
    raise StoreError(f"unknown encoding {encoding:#04x}")


@dataclass
class ObjInfo:
    kind: str
    size: int
    where: list = field(default_factory=list)
    payload: bytes | None = None


class StoreReader:
    def __init__(self, root: str, keep_payloads: bool = False):
        self.root = root
        self.keep = keep_payloads
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.objects: dict[bytes, ObjInfo] = {}
        self.loose_count = 0
        self.packed_count = 0
        self.pack_count = 0
        self.refs: dict[str, bytes] = {}
        self.reflog_ids: list[tuple[str, bytes]] = []
        self.links: list[tuple[bytes, bytes]] = []  # (from, to)

    def problem(self, msg):
        self.problems.append(msg)

    def path(self, *p):
        return os.path.join(self.root, *p)

    # -- objects ---------------------------------------------------------

    def _accept(self, where: str, oid: bytes, code: int, payload: bytes, expect_size: int):
        """Check one object copy: kind, id, CBOR payload; record it."""
        if code not in KINDS:
            self.problem(f"{where}: unknown kind code {code}")
            return
        kind = KINDS[code]
        if code not in ACTIVE_KINDS:
            self.warnings.append(f"{where}: reserved kind {kind!r} (accepted)")
        got = object_id(kind, payload)
        if got != oid:
            self.problem(f"{where}: id mismatch: content hashes to {id_text(got)}, "
                         f"expected {id_text(oid)}")
            return
        if kind != "blob":
            try:
                v = decode(payload)
            except CborError as e:
                self.problem(f"{where}: {kind} payload is not canonical CBOR: {e}")
                return
            for t in links_of(v, []):
                self.links.append((oid, t))
        info = self.objects.get(oid)
        if info is None:
            info = self.objects[oid] = ObjInfo(kind, len(payload))
        info.where.append(where)
        if self.keep:
            info.payload = payload

    def read_loose(self, rel: str, oid: bytes):
        where = rel
        try:
            with open(self.path(rel), "rb") as f:
                data = f.read()
        except OSError as e:
            self.problem(f"{where}: cannot read: {e}")
            return
        if len(data) < 15:
            self.problem(f"{where}: truncated loose object header ({len(data)} bytes)")
            return
        if data[:4] != b"aosL":
            self.problem(f"{where}: bad magic {data[:4].hex()} (expected 616f734c)")
            return
        if data[4] != 1:
            self.problem(f"{where}: unsupported loose format version {data[4]}")
            return
        code, enc = data[5], data[6]
        size = int.from_bytes(data[7:15], "little")
        try:
            payload = decompress_stored(enc, data[15:], size)
        except StoreError as e:
            self.problem(f"{where}: {e}")
            return
        self.loose_count += 1
        self._accept(where, oid, code, payload, size)

    def read_pack(self, c_hex: str):
        prel = os.path.join("objects", "pack", f"pack-{c_hex}.pack")
        irel = os.path.join("objects", "pack", f"pack-{c_hex}.idx")
        try:
            with open(self.path(prel), "rb") as f:
                pack = f.read()
            with open(self.path(irel), "rb") as f:
                idx = f.read()
        except OSError as e:
            self.problem(f"{prel}: cannot read: {e}")
            return
        self.pack_count += 1
        # --- pack file
        if len(pack) < 8 + 40:
            self.problem(f"{prel}: too short ({len(pack)} bytes)")
            return
        if pack[:4] != b"aosP":
            self.problem(f"{prel}: bad magic {pack[:4].hex()} (expected 616f7350)")
            return
        version = int.from_bytes(pack[4:8], "little")
        if version != 1:
            self.problem(f"{prel}: unsupported pack version {version}")
            return
        checksum = pack[-32:]
        actual = blake3.blake3(pack[:-32]).digest()
        if actual != checksum:
            self.problem(f"{prel}: pack checksum mismatch (trailer {checksum.hex()}, "
                         f"content hashes to {actual.hex()})")
        elif checksum.hex() != c_hex:
            self.problem(f"{prel}: file name does not match the pack checksum {checksum.hex()}")
        trailer = len(pack) - 40
        count = int.from_bytes(pack[trailer:trailer + 8], "little")
        entries: dict[bytes, int] = {}
        pos = 8
        ok = True
        while pos < trailer:
            if pos + 50 > trailer:
                self.problem(f"{prel}: entry header at offset {pos} runs into the trailer")
                ok = False
                break
            oid = pack[pos:pos + 32]
            code, enc = pack[pos + 32], pack[pos + 33]
            size = int.from_bytes(pack[pos + 34:pos + 42], "little")
            slen = int.from_bytes(pack[pos + 42:pos + 50], "little")
            if pos + 50 + slen > trailer:
                self.problem(f"{prel}: entry at offset {pos}: stored length {slen} runs "
                             f"past the trailer")
                ok = False
                break
            where = f"{prel}@{pos} ({id_text(oid)})"
            if oid in entries:
                self.problem(f"{where}: duplicate id in pack")
            entries[oid] = pos
            try:
                payload = decompress_stored(enc, pack[pos + 50:pos + 50 + slen], size)
            except StoreError as e:
                self.problem(f"{where}: {e}")
            else:
                self._accept(where, oid, code, payload, size)
            pos += 50 + slen
        if ok and count != len(entries):
            self.problem(f"{prel}: trailer says {count} entries, found {len(entries)}")
        self.packed_count += len(entries)
        # --- index
        self.check_index(irel, idx, checksum, entries, count)

    def check_index(self, irel, idx: bytes, pack_c: bytes, entries: dict, pack_count: int):
        if len(idx) < IDX_FIXED:
            self.problem(f"{irel}: too short ({len(idx)} bytes)")
            return
        if idx[:4] != b"aosI":
            self.problem(f"{irel}: bad magic {idx[:4].hex()} (expected 616f7349)")
            return
        version = int.from_bytes(idx[4:8], "little")
        if version != 1:
            self.problem(f"{irel}: unsupported index version {version}")
            return
        actual = blake3.blake3(idx[:-32]).digest()
        if actual != idx[-32:]:
            self.problem(f"{irel}: index checksum mismatch (trailer {idx[-32:].hex()}, "
                         f"content hashes to {actual.hex()})")
        n = int.from_bytes(idx[8:16], "little")
        if len(idx) != IDX_FIXED + 40 * n:
            self.problem(f"{irel}: length {len(idx)} != {IDX_FIXED} + 40*{n}")
            return
        if idx[-64:-32] != pack_c:
            self.problem(f"{irel}: names pack checksum {idx[-64:-32].hex()}, "
                         f"pack has {pack_c.hex()}")
        if n != pack_count:
            self.problem(f"{irel}: index has {n} entries, pack trailer says {pack_count}")
        fan = [int.from_bytes(idx[16 + 4 * b:20 + 4 * b], "little") for b in range(256)]
        ids_off = 16 + 1024
        ids = [idx[ids_off + 32 * i:ids_off + 32 * i + 32] for i in range(n)]
        off_off = ids_off + 32 * n
        offs = [int.from_bytes(idx[off_off + 8 * i:off_off + 8 * i + 8], "little")
                for i in range(n)]
        for i in range(1, n):
            if ids[i] <= ids[i - 1]:
                self.problem(f"{irel}: ids not strictly ascending at position {i}")
                break
        counts = [0] * 256
        for i in ids:
            counts[i[0]] += 1
        acc = 0
        for b in range(256):
            acc += counts[b]
            if fan[b] != acc:
                self.problem(f"{irel}: fan-out F[{b}] = {fan[b]}, expected {acc}")
                break
        if fan[255] != n:
            self.problem(f"{irel}: F[255] = {fan[255]} != N = {n}")
        for i, o in zip(ids, offs):
            if entries.get(i) != o:
                if i not in entries:
                    self.problem(f"{irel}: indexes {id_text(i)}, which is not in the pack")
                else:
                    self.problem(f"{irel}: offset {o} for {id_text(i)} does not point to "
                                 f"its entry (at {entries[i]})")
        missing = set(entries) - set(ids)
        for i in sorted(missing):
            self.problem(f"{irel}: pack entry {id_text(i)} is not indexed")

    def read_objects(self):
        odir = self.path("objects")
        if not os.path.isdir(odir):
            self.problem("objects/: missing")
            return
        # packs first (§5: a reader looks in the packs and then in loose files)
        pdir = os.path.join(odir, "pack")
        if os.path.isdir(pdir):
            names = sorted(os.listdir(pdir))
            packs, idxs = set(), set()
            for name in names:
                m = PACK_RE.match(name)
                if m:
                    (packs if m.group(2) == "pack" else idxs).add(m.group(1))
                else:
                    self.warnings.append(f"objects/pack/{name}: unexpected file, ignored")
            for c in sorted(packs - idxs):
                self.warnings.append(f"objects/pack/pack-{c}.pack: no index, ignored (§9)")
            for c in sorted(idxs - packs):
                self.problem(f"objects/pack/pack-{c}.idx: index without its pack")
            for c in sorted(packs & idxs):
                self.read_pack(c)
        for d in sorted(os.listdir(odir)):
            if d == "pack":
                continue
            full = os.path.join(odir, d)
            if not HEX2.match(d) or not os.path.isdir(full):
                self.warnings.append(f"objects/{d}: unexpected entry, ignored")
                continue
            for name in sorted(os.listdir(full)):
                rel = os.path.join("objects", d, name)
                if not HEX62.match(name) or not os.path.isfile(os.path.join(full, name)):
                    self.warnings.append(f"{rel}: unexpected entry, ignored")
                    continue
                self.read_loose(rel, bytes.fromhex(d + name))

    # -- refs --------------------------------------------------------------

    def read_refs(self):
        rdir = self.path("refs")
        if not os.path.isdir(rdir):
            self.problem("refs/: missing")
            return
        for dirpath, dirnames, filenames in os.walk(rdir):
            dirnames.sort()
            for fn in sorted(filenames):
                full = os.path.join(dirpath, fn)
                name = os.path.relpath(full, self.root).replace(os.sep, "/")
                if fn.endswith(".lock"):
                    self.warnings.append(f"{name}: ref lock file (update in progress?)")
                    continue
                if not valid_ref_name(name):
                    self.problem(f"{name}: invalid ref name")
                    continue
                with open(full, "rb") as f:
                    data = f.read()
                oid = None
                if len(data) == 68 and data.endswith(b"\n"):
                    try:
                        oid = parse_id_text(data[:-1].decode("ascii"))
                    except UnicodeDecodeError:
                        pass
                if oid is None:
                    self.problem(f"{name}: malformed ref file {data[:80]!r} "
                                 f"(expected b3:<64 hex>\\n)")
                    continue
                self.refs[name] = oid

    def read_reflogs(self):
        ldir = self.path("logs")
        if not os.path.isdir(ldir):
            return
        for dirpath, dirnames, filenames in os.walk(ldir):
            dirnames.sort()
            for fn in sorted(filenames):
                full = os.path.join(dirpath, fn)
                rel = os.path.relpath(full, self.root).replace(os.sep, "/")
                refname = os.path.relpath(full, ldir).replace(os.sep, "/")
                if not valid_ref_name(refname):
                    self.problem(f"{rel}: reflog for an invalid ref name")
                    continue
                with open(full, "rb") as f:
                    data = f.read()
                if data and not data.endswith(b"\n"):
                    self.problem(f"{rel}: last line is not terminated by LF")
                last = None
                for lineno, line in enumerate(data.split(b"\n")[:-1], 1):
                    parts = line.split(b" ", 3)
                    okline = len(parts) >= 3 and re.fullmatch(rb"[0-9]+", parts[2])
                    ids = []
                    for p in parts[:2] if okline else []:
                        if p == b"-":
                            continue
                        i = parse_id_text(p.decode("ascii", "replace"))
                        if i is None:
                            okline = False
                        else:
                            ids.append(i)
                    if not okline:
                        self.problem(f"{rel}:{lineno}: malformed reflog line {line[:100]!r}")
                        continue
                    for i in ids:
                        self.reflog_ids.append((f"{rel}:{lineno}", i))
                    last = (lineno, parts[0], parts[1])
                # §8: a last line from the ref's current value to another value records an
                # update whose writer was killed before it moved the ref: it did not happen.
                if last is not None:
                    cur = self.refs.get(refname)
                    cur_text = id_text(cur).encode() if cur is not None else b"-"
                    if last[1] == cur_text and last[2] != cur_text:
                        self.warnings.append(
                            f"{rel}:{last[0]}: records a move that did not happen "
                            f"(an interrupted update); ignored")

    # -- everything ----------------------------------------------------------

    def verify(self):
        try:
            with open(self.path("format"), "rb") as f:
                fmt = f.read()
            if fmt != FORMAT_BYTES:
                self.problem(f"format: contents {fmt[:40]!r}, expected {FORMAT_BYTES!r}")
        except OSError:
            self.problem("format: missing (not a store)")
            return self
        self.read_objects()
        self.read_refs()
        self.read_reflogs()
        for src, tgt in self.links:
            if tgt not in self.objects:
                self.problem(f"missing object {id_text(tgt)} linked from {id_text(src)}")
        for name, oid in sorted(self.refs.items()):
            if oid not in self.objects:
                self.problem(f"{name}: points to missing object {id_text(oid)}")
        for where, oid in self.reflog_ids:
            if oid not in self.objects:
                self.problem(f"{where}: reflog names missing object {id_text(oid)}")
        return self


# --------------------------------------------------------------------------
# §14 bundles

BUNDLE_SIGNATURE = "# aos bundle v1"
BUNDLE_CAPABILITIES = {"object-format": {"blake3"}, "lineage": {"1"}}
BUNDLE_ACTIVE_KINDS = {1, 2, 3, 4, 5, 7}
CAP_NAME = re.compile(r"[a-z0-9-]{1,64}\Z")
MAX_LINE = 1024
MAX_HEADER = 16 << 20
MAX_LIST = 65536


class BundleError(Exception):
    """A rejected bundle: what is wrong and the byte offset."""

    def __init__(self, offset: int, message: str):
        super().__init__(f"byte offset {offset}: {message}")
        self.offset = offset


def bundle_ref_role(name: str):
    """('world'|'checkpoint'|'lineage', N) for refs/worlds/N, refs/checkpoints/N and
    refs/lineage/N, else None."""
    for prefix, role in (("refs/worlds/", "world"), ("refs/checkpoints/", "checkpoint"),
                         ("refs/lineage/", "lineage")):
        if name.startswith(prefix):
            rest = name[len(prefix):]
            if rest and "/" not in rest:
                return role, rest
    return None


def parse_bundle_header(data: bytes):
    """§14 header: returns ({capabilities, prerequisites, refs}, header length)."""
    caps: list[tuple[str, str]] = []
    prereqs: list[bytes] = []
    refs: list[tuple[bytes, str]] = []
    section = 0  # 0 capabilities, 1 prerequisites, 2 refs
    pos = 0
    lineno = 0
    while True:
        lineno += 1
        if pos >= MAX_HEADER:
            raise BundleError(pos, "header too long")
        end = data.find(b"\n", pos, pos + MAX_LINE)
        if end < 0:
            raise BundleError(pos, f"line {lineno}: no line feed within {MAX_LINE} bytes")
        raw = data[pos:end]
        bad = [i for i, b in enumerate(raw) if not 0x20 <= b <= 0x7E]
        if bad:
            raise BundleError(pos + bad[0], f"line {lineno}: not printable ASCII")
        line = raw.decode("ascii")
        start, pos = pos, end + 1
        if lineno == 1:
            if line != BUNDLE_SIGNATURE:
                raise BundleError(start, f"bad signature {line[:40]!r}")
            continue
        if line == "":
            break
        if line.startswith("@"):
            if section > 0:
                raise BundleError(start, "capability after prerequisites or refs")
            name, eq, value = line[1:].partition("=")
            if not eq or not CAP_NAME.match(name) or " " in value:
                raise BundleError(start, f"malformed capability {line!r}")
            if value not in BUNDLE_CAPABILITIES.get(name, ()):
                raise BundleError(start, f"unknown capability {line!r}")
            if caps and caps[-1][0] >= name:
                raise BundleError(start, "capabilities not strictly ascending")
            if len(caps) >= 64:
                raise BundleError(start, "too many capabilities")
            caps.append((name, value))
        elif line.startswith("-"):
            if section > 1:
                raise BundleError(start, "prerequisite after refs")
            section = 1
            oid = parse_id_text(line[1:])
            if oid is None:
                raise BundleError(start, f"bad prerequisite id {line[1:80]!r}")
            if prereqs and prereqs[-1] >= oid:
                raise BundleError(start, "prerequisites not strictly ascending")
            if len(prereqs) >= MAX_LIST:
                raise BundleError(start, "too many prerequisites")
            prereqs.append(oid)
        else:
            section = 2
            text, sp, name = line.partition(" ")
            oid = parse_id_text(text)
            if not sp or oid is None:
                raise BundleError(start, f"bad ref line {line[:80]!r}")
            if not valid_ref_name(name) or bundle_ref_role(name) is None:
                raise BundleError(start, f"ref {name[:80]!r} may not be bundled")
            if bundle_ref_role(name)[0] == "lineage" and not any(k == "lineage" for k, _ in caps):
                raise BundleError(start, f"{name} needs the capability @lineage=1")
            if refs and refs[-1][1].encode() >= name.encode():
                raise BundleError(start, "refs not strictly ascending")
            if len(refs) >= MAX_LIST:
                raise BundleError(start, "too many refs")
            refs.append((oid, name))
    names = {n for _, n in refs}
    if not any(k == "object-format" for k, _ in caps):
        raise BundleError(start, "no @object-format capability")
    if not refs:
        raise BundleError(start, "no refs")
    for _, n in refs:
        role = bundle_ref_role(n)
        if role[0] in ("checkpoint", "lineage") and f"refs/worlds/{role[1]}" not in names:
            raise BundleError(start, f"{n} without its world")
    if any(k == "lineage" for k, _ in caps) and not any(
            bundle_ref_role(n)[0] == "lineage" for _, n in refs):
        raise BundleError(start, "@lineage=1 without any refs/lineage/NAME ref")
    return {"capabilities": caps, "prerequisites": prereqs, "refs": refs}, pos


# §15 lineage

LINEAGE_MEMBERS = {"at", "from", "height", "lineage", "parent"}


def check_lineage(v) -> str | None:
    """None if `v` has the lineage shape of §15, else what is wrong (naming the member)."""
    if not isinstance(v, Map):
        return "at ``: not a map"
    m = {}
    for k, x in v.pairs:
        if not isinstance(k, str) or k not in LINEAGE_MEMBERS:
            return f"at ``: unexpected member {k!r}"
        m[k] = x
    if m.get("lineage") != 1 or isinstance(m.get("lineage"), bool):
        return "at `/lineage`: must be 1"
    at = m.get("at")
    if not isinstance(at, bytes) or len(at) != 32:
        return "at `/at`: must be 32 bytes"
    h = m.get("height")
    if not isinstance(h, int) or isinstance(h, bool) or not 0 <= h <= INT_MAX:
        return "at `/height`: must be an integer >= 0"
    if "from" in m and not isinstance(m["from"], str):
        return "at `/from`: must be text"
    if "parent" in m and not isinstance(m["parent"], Link):
        return "at `/parent`: must be a link"
    return None


def check_lineage_vectors(d: str) -> tuple[list[str], int]:
    fails: list[str] = []
    path = os.path.join(d, "lineage.json")
    if not os.path.isfile(path):
        return fails, 0
    with open(path, encoding="utf-8") as fh:
        exp = json.load(fh)
    for t in exp["lineages"]:
        v = json_parse(t["json"])
        enc = encode(v)
        if enc.hex() != t["cbor"]:
            fails.append(f"lineage {t['name']!r}: encodes to {enc.hex()}")
        if id_text(object_id("value", enc)) != t["id"]:
            fails.append(f"lineage {t['name']!r}: id differs")
        why = check_lineage(decode(bytes.fromhex(t["cbor"])))
        if why:
            fails.append(f"lineage {t['name']!r}: rejected: {why}")
    for t in exp["invalid"]:
        why = check_lineage(json_parse(t["json"]))
        if why is None:
            fails.append(f"lineage invalid {t['name']!r}: accepted")
        elif f"at `{t['member']}`" not in why:
            fails.append(f"lineage invalid {t['name']!r}: {why}, expected at `{t['member']}`")
    return fails, len(exp["lineages"]) + len(exp["invalid"])


def _entry_fields(payload: bytes):
    """(height, prev id or None) of an entry payload."""
    m = decode(payload)
    fields = dict(m.pairs) if isinstance(m, Map) else {}
    h = fields.get("height")
    prev = fields.get("prev")
    return h, (prev.id if isinstance(prev, Link) else None)


def read_bundle(data: bytes) -> dict:
    """Read and check a whole bundle (§14); raises BundleError naming the byte offset."""
    header, hlen = parse_bundle_header(data)
    f = len(data)
    if f < hlen + 8 + 72:
        raise BundleError(f, "too short for an objects section and checksums")
    if blake3.blake3(data[:f - 32]).digest() != data[f - 32:]:
        raise BundleError(f - 32, "bundle checksum mismatch")
    if blake3.blake3(data[hlen:f - 64]).digest() != data[f - 64:f - 32]:
        raise BundleError(f - 64, "objects section checksum mismatch")
    if data[hlen:hlen + 4] != b"aosP" or int.from_bytes(data[hlen + 4:hlen + 8], "little") != 1:
        raise BundleError(hlen, "objects section does not start with aosP version 1")
    count_at = f - 72
    pos = hlen + 8
    objects = []
    kinds: dict[bytes, str] = {}
    links: list[tuple[bytes, bytes]] = []
    heights: dict[bytes, int] = {}
    prevs: list[tuple[bytes, bytes, int]] = []
    values: dict[bytes, bytes] = {}
    while pos < count_at:
        if pos + 50 > count_at:
            raise BundleError(pos, "partial entry header")
        oid = data[pos:pos + 32]
        code, enc = data[pos + 32], data[pos + 33]
        size = int.from_bytes(data[pos + 34:pos + 42], "little")
        slen = int.from_bytes(data[pos + 42:pos + 50], "little")
        if pos + 50 + slen > count_at:
            raise BundleError(pos, "stored length runs past the objects section")
        where = f"object {id_text(oid)}"
        if code not in BUNDLE_ACTIVE_KINDS:
            raise BundleError(pos, f"{where}: kind code {code} is not active")
        kind = KINDS[code]
        try:
            payload = decompress_stored(enc, data[pos + 50:pos + 50 + slen], size)
        except StoreError as e:
            raise BundleError(pos, f"{where}: {e}")
        if object_id(kind, payload) != oid:
            raise BundleError(pos, f"{where}: content does not hash to the id")
        if oid in kinds:
            raise BundleError(pos, f"{where}: appears twice")
        kinds[oid] = kind
        if kind != "blob":
            try:
                v = decode(payload)
            except CborError as e:
                raise BundleError(pos, f"{where}: not canonical CBOR: {e}")
            for t in links_of(v, []):
                links.append((oid, t))
        if kind == "value":
            values[oid] = payload
        if kind == "entry":
            h, prev = _entry_fields(payload)
            if not isinstance(h, int):
                raise BundleError(pos, f"{where}: entry without a height")
            heights[oid] = h
            if prev is not None:
                prevs.append((oid, prev, h - 1))
        objects.append({"offset": pos, "id": id_text(oid), "kind": kind, "encoding": enc,
                        "size": size, "stored_length": slen})
        pos += 50 + slen
    count = int.from_bytes(data[count_at:count_at + 8], "little")
    if count != len(objects):
        raise BundleError(count_at, f"count {count}, but {len(objects)} entries")
    external = set()
    for src, t in links:
        if t not in kinds:
            if not header["prerequisites"]:
                raise BundleError(0, f"object {id_text(src)} links {id_text(t)}, "
                                     f"which is not in the self-contained bundle")
            external.add(t)
    for src, prev, want in prevs:
        if prev in heights and heights[prev] != want:
            raise BundleError(0, f"entry {id_text(src)}: predecessor height "
                                 f"{heights[prev]}, expected {want}")
    for oid, name in header["refs"]:
        want = {"world": "entry", "checkpoint": "snapshot", "lineage": "value"}[
            bundle_ref_role(name)[0]]
        if oid in kinds:
            if kinds[oid] != want:
                raise BundleError(0, f"{name} points to a {kinds[oid]}, not a {want}")
            if want == "value":
                why = check_lineage(decode(values[oid]))
                if why:
                    raise BundleError(0, f"{name} is not a lineage: {why}")
        elif oid not in header["prerequisites"]:
            raise BundleError(0, f"{name} points to {id_text(oid)}, which is neither in the "
                                 f"bundle nor a prerequisite")
    return {"header": header, "header_length": hlen, "length": f, "objects": objects,
            "count": count, "pack_checksum": data[f - 64:f - 32].hex(),
            "checksum": data[f - 32:].hex(), "external_links": sorted(external)}


def check_bundle_vectors(d: str) -> tuple[list[str], int, int]:
    fails: list[str] = []
    path = os.path.join(d, "bundle.json")
    if not os.path.isfile(path):
        return fails, 0, 0
    with open(path, encoding="utf-8") as fh:
        exp = json.load(fh)
    for b in exp["bundles"]:
        name = b["file"]
        with open(os.path.join(d, name), "rb") as fh:
            data = fh.read()
        try:
            got = read_bundle(data)
        except BundleError as e:
            fails.append(f"{name}: rejected: {e}")
            continue
        h = got["header"]
        want = {
            "length": got["length"],
            "header_length": got["header_length"],
            "capabilities": [list(c) for c in h["capabilities"]],
            "prerequisites": [id_text(p) for p in h["prerequisites"]],
            "refs": [{"id": id_text(i), "name": n} for i, n in h["refs"]],
            "objects": got["objects"],
            "count": got["count"],
            "pack_checksum": got["pack_checksum"],
            "checksum": got["checksum"],
        }
        for k, v in want.items():
            if b.get(k) != v:
                fails.append(f"{name}: {k} differs from bundle.json")
    for t in exp.get("invalid_headers", []):
        try:
            parse_bundle_header(t["header"].encode("utf-8"))
            fails.append(f"bundle invalid header {t['name']!r}: accepted")
        except BundleError:
            pass
    return fails, len(exp["bundles"]), len(exp.get("invalid_headers", []))


# --------------------------------------------------------------------------
# §12–13 journal entries and snapshots: shape checks, written from the tables of the spec.
# Each check returns None or (JSON pointer of the offending member, reason).

class ShapeProblem(Exception):
    def __init__(self, pointer: str, reason: str):
        super().__init__(f"at `{pointer}`: {reason}")
        self.pointer = pointer
        self.reason = reason


def _is_nat(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= INT_MAX


class _Members:
    """The members of a text-keyed map, taken one by one; `done` rejects the rest."""

    def __init__(self, v, at: str):
        if not isinstance(v, Map) or not all(isinstance(k, str) for k, _ in v.pairs):
            raise ShapeProblem(at, "expected a map with text keys")
        self.m = dict(v.pairs)
        self.at = at
        self.taken = set()

    def opt(self, k):
        self.taken.add(k)
        return self.m.get(k)

    def req(self, k):
        self.taken.add(k)
        if k not in self.m:
            raise ShapeProblem(f"{self.at}/{k}", "missing")
        return self.m[k]

    def nat(self, k):
        x = self.req(k)
        if not _is_nat(x):
            raise ShapeProblem(f"{self.at}/{k}", "expected an integer >= 0")
        return x

    def text(self, k):
        x = self.req(k)
        if not isinstance(x, str):
            raise ShapeProblem(f"{self.at}/{k}", "expected text")
        return x

    def link(self, k):
        x = self.req(k)
        if not isinstance(x, Link):
            raise ShapeProblem(f"{self.at}/{k}", "expected a link")
        return x

    def done(self):
        extra = sorted(k for k in self.m if k not in self.taken)
        if extra:
            raise ShapeProblem(self.at, f"unexpected member {extra[0]!r}")


ENTRY_KINDS = ("genesis", "event", "fault", "snapshot", "manifest")
LIMITS = ("fuel", "max_call_depth", "max_memory_bytes", "max_output_bytes", "max_stack_bytes")


def check_entry(v) -> None:
    """Raises ShapeProblem unless v is a journal entry (§12)."""
    r = _Members(v, "")
    height = r.nat("height")
    prev = r.opt("prev")
    kind = r.text("kind")
    if (prev is None) != (height == 0) or (prev is not None and not isinstance(prev, Link)):
        raise ShapeProblem("/prev", "a link, present exactly when height > 0")
    if kind not in ENTRY_KINDS:
        raise ShapeProblem("/kind", f"unknown entry kind {kind!r}")
    if (kind == "genesis") != (height == 0):
        raise ShapeProblem("/kind", "exactly the entry of height 0 is a genesis")
    if kind == "genesis":
        if r.nat("format") != 1:
            raise ShapeProblem("/format", "journal format 1")
        r.link("manifest")
        mods = _Members(r.req("modules"), "/modules")
        for name, target in mods.m.items():
            if not isinstance(target, Link):
                raise ShapeProblem(f"/modules/{name}", "expected a link")
        lim = _Members(r.req("limits"), "/limits")
        for k in LIMITS:
            lim.nat(k)
        lim.done()
        r.nat("snapshot_every")
        r.nat("max_derived")
    elif kind == "event":
        origin = r.text("origin")
        if origin == "derived":
            c = _Members(r.req("cause"), "/cause")
            if c.nat("height") >= height:
                raise ShapeProblem("/cause/height", "a cause precedes its effect")
            c.text("reducer")
            c.opt("cell")
            c.done()
        elif origin != "ingress":
            raise ShapeProblem("/origin", f"unknown origin {origin!r}")
        r.text("schema")
        r.req("value")
        r.opt("key")
        eid = r.opt("id")  # revision 3: an ingress event's idempotency key
        if eid is not None:
            if origin != "ingress":
                raise ShapeProblem("/id", "only an ingress event carries an idempotency key")
            if not isinstance(eid, str):
                raise ShapeProblem("/id", "expected text")
            raw = eid.encode("utf-8")
            if not 1 <= len(raw) <= 256 or any(unicodedata.category(ch) == "Cc" for ch in eid):
                raise ShapeProblem("/id", "1 to 256 bytes of text without control characters")
        steps = r.req("steps")
        if not isinstance(steps, list):
            raise ShapeProblem("/steps", "expected an array")
        for i, st in enumerate(steps):
            at = f"/steps/{i}"
            m = _Members(st, at)
            m.text("reducer")
            m.opt("cell")
            state = m.req("state")
            if state is not None and not (isinstance(state, bytes) and len(state) == 32):
                raise ShapeProblem(f"{at}/state", "null or a 32-byte byte string")
            effects = m.opt("effects")
            if effects is not None:
                if not isinstance(effects, list) or not effects:
                    raise ShapeProblem(f"{at}/effects", "a non-empty array, or omitted")
                for j, e in enumerate(effects):
                    x = _Members(e, f"{at}/effects/{j}")
                    x.text("kind")
                    x.req("params")
                    if x.opt("cap_slot") is not None and not isinstance(x.m["cap_slot"], str):
                        raise ShapeProblem(f"{at}/effects/{j}/cap_slot", "expected text")
                    x.done()
            m.done()
    elif kind == "fault":
        if r.nat("cause") >= height:
            raise ShapeProblem("/cause", "a cause precedes its effect")
        r.text("reducer")
        r.opt("cell")
        r.text("code")
        r.text("message")
    elif kind == "snapshot":
        r.link("snapshot")
    elif kind == "manifest":
        r.link("manifest")
    r.done()


SNAPSHOT_FORMATS = {1: (), 2: ("manifest",)}  # format -> the keys it adds


def check_snapshot(v) -> None:
    """Raises ShapeProblem unless v is a snapshot (§13)."""
    r = _Members(v, "")
    fmt = r.nat("format")
    if fmt not in SNAPSHOT_FORMATS:
        raise ShapeProblem("/format", f"unknown snapshot format {fmt}")
    height = r.nat("height")
    r.link("head")
    r.link("genesis")
    if r.nat("last_marker") > height:
        raise ShapeProblem("/last_marker", "after the snapshot's height")
    states = _Members(r.req("states"), "/states")
    for name, s in states.m.items():
        if s is not None and not isinstance(s, Link):
            raise ShapeProblem(f"/states/{name}", "expected a link or null")
    cells = _Members(r.req("cells"), "/cells")
    for name, root in cells.m.items():
        if not isinstance(root, Link):
            raise ShapeProblem(f"/cells/{name}", "expected a link")
    # Format f has the keys of every format up to f, and the keys format f adds are what
    # makes it f (else it would be written in a lower format).
    for f in range(2, fmt + 1):
        for k in SNAPSHOT_FORMATS[f]:
            r.link(k)
    r.done()


def check_journal_vectors(d: str) -> tuple[list[str], int, int]:
    """journal.json: valid entries and snapshots (JSON -> CBOR -> id, shape) and invalid ones
    (rejected at the recorded pointer)."""
    path = os.path.join(d, "journal.json")
    if not os.path.isfile(path):
        return [], 0, 0
    with open(path, encoding="utf-8") as f:
        vec = json.load(f)
    fails = []
    checks = {"entry": check_entry, "snapshot": check_snapshot}
    for t in vec["valid"]:
        name = f"journal/{t['name']}"
        try:
            v = json_parse(t["json"])
            enc = encode(v)
            if enc.hex() != t["cbor"]:
                fails.append(f"{name}: encodes to {enc.hex()}, expected {t['cbor']}")
            oid = id_text(object_id(t["kind"], enc))
            if oid != t["id"]:
                fails.append(f"{name}: id {oid}, expected {t['id']}")
            checks[t["kind"]](decode(bytes.fromhex(t["cbor"])))
        except ShapeProblem as e:
            fails.append(f"{name}: rejected {e}")
        except (CborError, JsonMappingError, ValueModelError, ValueError) as e:
            fails.append(f"{name}: {type(e).__name__}: {e}")
    for t in vec["invalid"]:
        name = f"journal/{t['name']}"
        try:
            checks[t["kind"]](json_parse(t["json"]))
            fails.append(f"{name}: accepted, expected a rejection at {t['pointer']!r}")
        except ShapeProblem as e:
            if e.pointer != t["pointer"]:
                fails.append(f"{name}: rejected at {e.pointer!r} ({e.reason}), expected "
                             f"{t['pointer']!r}")
    return fails, len(vec["valid"]), len(vec["invalid"])


# --------------------------------------------------------------------------
# CLI: vectors


def check_vectors(d: str) -> list[str]:
    fails: list[str] = []
    counts = {}

    def load(name):
        with open(os.path.join(d, name), encoding="utf-8") as f:
            return json.load(f)

    # values.json
    vals = load("values.json")
    for t in vals:
        name = t["name"]
        try:
            v = json_parse(t["json"])
            enc = encode(v)
            if enc.hex() != t["cbor"]:
                fails.append(f"values/{name}: JSON encodes to {enc.hex()}, expected {t['cbor']}")
            oid = id_text(object_id("value", enc))
            if oid != t["id"]:
                fails.append(f"values/{name}: id {oid}, expected {t['id']}")
            dv = decode(bytes.fromhex(t["cbor"]))
            if encode(dv).hex() != t["cbor"]:
                fails.append(f"values/{name}: decode+encode is not the identity")
            if dv != v and encode(dv) != encode(v):
                fails.append(f"values/{name}: decoded value differs from parsed JSON")
            r = json_render(dv)
            if encode(json_parse(r)) != enc:
                fails.append(f"values/{name}: render/parse round trip fails: {r}")
        except (CborError, JsonMappingError, ValueModelError) as e:
            fails.append(f"values/{name}: {type(e).__name__}: {e}")
    counts["values"] = len(vals)

    # invalid.json
    inv = load("invalid.json")
    for t in inv:
        name = t["name"]
        try:
            decode(bytes.fromhex(t["cbor"]))
            fails.append(f"invalid/{name}: accepted, expected {t['rule']} at {t['offset']}")
        except CborError as e:
            if (e.rule, e.offset) != (t["rule"], t["offset"]):
                fails.append(f"invalid/{name}: got {e.rule} at {e.offset}, expected "
                             f"{t['rule']} at {t['offset']}")
    counts["invalid"] = len(inv)

    # blobs.json
    blobs = load("blobs.json")
    for t in blobs:
        oid = id_text(object_id("blob", bytes.fromhex(t["hex"])))
        if oid != t["id"]:
            fails.append(f"blobs/{t['name']}: id {oid}, expected {t['id']}")
    counts["blobs"] = len(blobs)

    # store.json + store/
    sj, sd = os.path.join(d, "store.json"), os.path.join(d, "store")
    if os.path.isfile(sj) and os.path.isdir(sd):
        exp = load("store.json")
        st = StoreReader(sd, keep_payloads=True).verify()
        fails += [f"store: {p}" for p in st.problems]
        got = {id_text(i): (o.kind, o.payload.hex()) for i, o in st.objects.items()}
        want = {o["id"]: (o["kind"], o["payload"]) for o in exp["objects"]}
        for i in sorted(set(want) | set(got)):
            if i not in got:
                fails.append(f"store: object {i} listed in store.json not found")
            elif i not in want:
                fails.append(f"store: object {i} in store/ not listed in store.json")
            elif got[i] != want[i]:
                fails.append(f"store: object {i} differs (kind/payload)")
        for i, (kind, ph) in want.items():
            if id_text(object_id(kind, bytes.fromhex(ph))) != i:
                fails.append(f"store.json: object {i} does not hash to its id")
        got_refs = {n: id_text(i) for n, i in st.refs.items()}
        if got_refs != exp["refs"]:
            fails.append(f"store: refs {got_refs} != store.json refs {exp['refs']}")
        counts["store objects"] = len(st.objects)
        counts["store refs"] = len(st.refs)
    else:
        counts["store"] = "absent"
    jfails, nj, nji = check_journal_vectors(d)
    fails += jfails
    counts["journal"] = nj
    counts["invalid journal"] = nji
    bfails, nb, ni = check_bundle_vectors(d)
    fails += bfails
    counts["bundles"] = nb
    counts["invalid bundle headers"] = ni
    lfails, nl = check_lineage_vectors(d)
    fails += lfails
    counts["lineage"] = nl
    print("vectors: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return fails


# --------------------------------------------------------------------------
# CLI

USAGE = """usage:
  aos_reader.py vectors DIR       check golden vectors (values/invalid/blobs/store/journal/bundles/lineage)
  aos_reader.py verify STORE_DIR  verify a store directory (the .aos directory)
  aos_reader.py ids STORE_DIR     print '<id> <kind> <size>' for every object
  aos_reader.py bundle FILE       check a bundle (§14) and list its refs"""


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("vectors", "verify", "ids", "bundle"):
        print(USAGE, file=sys.stderr)
        return 2
    cmd, arg = argv[1], argv[2]
    if cmd == "bundle":
        try:
            with open(arg, "rb") as fh:
                data = fh.read()
        except OSError as e:
            print(f"error: {arg}: {e}", file=sys.stderr)
            return 2
        try:
            b = read_bundle(data)
        except BundleError as e:
            print(f"error: {arg}: {e}")
            return 1
        for oid, name in b["header"]["refs"]:
            print(f"{id_text(oid)} {name}")
        for p in b["header"]["prerequisites"]:
            print(f"requires {id_text(p)}")
        print(f"ok: {len(b['objects'])} objects, {len(b['header']['refs'])} refs, "
              f"{len(b['header']['prerequisites'])} prerequisites, "
              f"{len(b['external_links'])} links into the prerequisites' closure")
        return 0
    if not os.path.isdir(arg):
        print(f"error: {arg}: not a directory", file=sys.stderr)
        return 2
    if cmd == "vectors":
        fails = check_vectors(arg)
        for f in fails:
            print(f"FAIL {f}")
        if fails:
            print(f"{len(fails)} failure(s)")
            return 1
        print("ok: all vectors pass")
        return 0
    st = StoreReader(arg).verify()
    for w in st.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if cmd == "verify":
        if st.problems:
            for p in st.problems:
                print(f"error: {p}")
            print(f"{len(st.problems)} problem(s) found")
            return 1
        print(f"ok: {len(st.objects)} objects ({st.loose_count} loose, {st.packed_count} "
              f"packed in {st.pack_count} packs), {len(st.refs)} refs")
        return 0
    for p in st.problems:
        print(f"error: {p}", file=sys.stderr)
    for i in sorted(st.objects):
        o = st.objects[i]
        print(f"{id_text(i)} {o.kind} {o.size}")
    return 1 if st.problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)
