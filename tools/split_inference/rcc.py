"""A reader for Qt's binary resource files (`.rcc`, made by `rcc -binary`), enough to list and read
the images an application ships in them (GCompris keeps its photos there).

Layout (Qt's rcc.cpp / qresource.cpp; all integers big-endian):

    header   b"qres", version (u32: 1, 2 or 3), tree offset, data offset, names offset (u32 each),
             and from version 3 one more u32 of flags
    tree     one node per entry, 14 bytes (version 1) or 22 bytes (version >= 2, + u64 mtime):
             name offset (u32), flags (u16: 1 zlib, 2 directory, 4 zstd), then
             directory: child count (u32), first child index (u32)
             file:      country (u16), language (u16), data offset (u32)
    names    at names + name offset: length (u16), hash (u32), UTF-16BE characters
    data     at data + data offset: size (u32) then the bytes; zlib entries are Qt's qCompress
             format (u32 uncompressed size, then a zlib stream)

Node 0 is the root directory. zstd-compressed entries are listed but cannot be read without a
zstd module (RccError).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from edgeai.errors import UserInputError

MAGIC = b"qres"
COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 1, 2, 4


class RccError(UserInputError):
    """Not a Qt resource file, or a damaged one."""


@dataclass(frozen=True)
class RccEntry:
    name: str  # path inside the resource, "/"-separated, no leading slash
    offset: int  # of the entry's u32 size in the file
    flags: int


class RccFile:
    def __init__(self, data: bytes, origin: str = "<bytes>") -> None:
        self.data, self.origin = data, origin
        if len(data) < 20 or data[:4] != MAGIC:
            raise RccError(f"{origin}: not a Qt resource file (no 'qres' header)")
        self.version, self.tree, self.data_at, self.names = struct.unpack_from(">IIII", data, 4)
        if self.version not in (1, 2, 3):
            raise RccError(f"{origin}: unknown rcc version {self.version}")
        self.node = 14 if self.version == 1 else 22
        self.entries = self._walk()

    @classmethod
    def open(cls, path: Path | str) -> RccFile:
        return cls(Path(path).read_bytes(), str(path))

    def _u(self, fmt: str, at: int) -> tuple:
        try:
            return struct.unpack_from(fmt, self.data, at)
        except struct.error:
            raise RccError(f"{self.origin}: truncated at byte {at}") from None

    def _name(self, offset: int) -> str:
        at = self.names + offset
        (length,) = self._u(">H", at)
        raw = self.data[at + 6 : at + 6 + 2 * length]
        if len(raw) != 2 * length:
            raise RccError(f"{self.origin}: truncated name at byte {at}")
        return raw.decode("utf-16-be")

    def _walk(self) -> list[RccEntry]:
        out: list[RccEntry] = []
        stack, seen = [(0, "")], set()
        while stack:
            index, prefix = stack.pop()
            if index in seen:
                raise RccError(f"{self.origin}: the resource tree loops")
            seen.add(index)
            at = self.tree + index * self.node
            name_off, flags = self._u(">IH", at)
            name = "" if index == 0 else self._name(name_off)
            path = f"{prefix}/{name}" if prefix else name
            if flags & DIRECTORY:
                count, first = self._u(">II", at + 6)
                stack += [(first + i, path) for i in reversed(range(count))]
            else:
                (data_off,) = self._u(">I", at + 10)
                out.append(RccEntry(path, self.data_at + data_off, flags))
        return sorted(out, key=lambda e: e.name)

    def read(self, entry: RccEntry | str) -> bytes:
        if isinstance(entry, str):
            found = [e for e in self.entries if e.name == entry]
            if not found:
                raise RccError(f"{self.origin}: no entry '{entry}'")
            entry = found[0]
        (size,) = self._u(">I", entry.offset)
        blob = self.data[entry.offset + 4 : entry.offset + 4 + size]
        if len(blob) != size:
            raise RccError(f"{self.origin}: entry '{entry.name}' is truncated")
        if entry.flags & COMPRESSED_ZSTD:
            raise RccError(f"{self.origin}: entry '{entry.name}' is zstd-compressed (unsupported)")
        if entry.flags & COMPRESSED:
            try:
                return zlib.decompress(blob[4:])
            except zlib.error as exc:
                raise RccError(f"{self.origin}: entry '{entry.name}': {exc}") from None
        return blob


@lru_cache(maxsize=64)
def open_rcc(path: str) -> RccFile:
    return RccFile.open(path)


def build_rcc(files: dict[str, bytes], version: int = 2, compress: bool = True) -> bytes:
    """A resource file holding `files` ({"dir/name.jpg": bytes}), in Qt's layout (for tests)."""
    root: dict = {}
    for name, blob in files.items():
        node = root
        *dirs, leaf = name.split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = blob
    names, name_at, data = bytearray(), {}, bytearray()

    def name_off(n: str) -> int:
        if n not in name_at:
            name_at[n] = len(names)
            names.extend(struct.pack(">HI", len(n), 0) + n.encode("utf-16-be"))
        return name_at[n]

    nodes: list[bytes | None] = [None]
    size = 14 if version == 1 else 22

    def pack(name: str, flags: int, a: int, b: int) -> bytes:
        rec = struct.pack(">IHII", name_off(name) if name else 0, flags, a, b)
        return rec if version == 1 else rec + bytes(8)

    def place(index: int, name: str, node: dict) -> None:  # breadth-first, as rcc writes it
        first = len(nodes)
        children = sorted(node.items())
        nodes.extend([None] * len(children))
        nodes[index] = pack(name, DIRECTORY, len(children), first)
        for i, (child, value) in enumerate(children):
            if isinstance(value, dict):
                place(first + i, child, value)
            else:
                payload = (
                    struct.pack(">I", len(value)) + zlib.compress(value) if compress else value
                )
                nodes[first + i] = pack(child, COMPRESSED if compress else 0, 0, len(data))
                data.extend(struct.pack(">I", len(payload)) + payload)

    place(0, "", root)
    header = 20 if version < 3 else 24
    tree = b"".join(n for n in nodes if n is not None)
    assert len(tree) == size * len(nodes)
    tree_at, data_at = header, header + len(tree)
    names_at = data_at + len(data)
    head = MAGIC + struct.pack(">IIII", version, tree_at, data_at, names_at)
    return head + (bytes(4) if version >= 3 else b"") + tree + bytes(data) + bytes(names)
