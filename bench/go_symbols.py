"""Function names for addresses in a stripped Go binary, read from its own `.gopclntab`.

The Temporal CLI ships without a symbol table, so `perf` names none of the server's functions. Every Go
binary keeps the runtime's function table for tracebacks (go.dev/src/runtime/symtab.go, `pcHeader` and
`functab`, Go 1.18 and later), which is enough to name the function a sample fell in. `perf script` gives a
sample's place as an offset into the file; the table counts from the start of `.text`.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass
from pathlib import Path

_GO_118_MAGICS = (0xFFFFFFF0, 0xFFFFFFF1)


@dataclass(frozen=True)
class _Section:
    name: str
    address: int
    offset: int
    size: int


def _sections(data: bytes) -> dict[str, _Section]:
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError("not a 64-bit ELF file")
    (table,) = struct.unpack_from("<Q", data, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", data, 0x3A)
    raw = [struct.unpack_from("<IIQQQQ", data, table + i * entry_size) for i in range(count)]
    names_at = raw[names_index][4]
    found = {}
    for name_offset, _, _, address, offset, size in raw:
        start = names_at + name_offset
        name = data[start : data.index(b"\0", start)].decode()
        found[name] = _Section(name, address, offset, size)
    return found


def entry_offset(path: Path) -> int:
    """Where in the file the program starts (the ELF entry point, mapped through its load segment)."""
    data = path.read_bytes()
    (entry,) = struct.unpack_from("<Q", data, 0x18)
    (segments,) = struct.unpack_from("<Q", data, 0x20)
    entry_size, count = struct.unpack_from("<HH", data, 0x36)
    for i in range(count):
        at = segments + i * entry_size
        kind, _, offset, address, _, file_size = struct.unpack_from("<IIQQQQ", data, at)
        if kind == 1 and address <= entry < address + file_size:
            return offset + entry - address
    raise ValueError("the entry point is in no loaded segment")


class GoSymbols:
    def __init__(self, path: Path) -> None:
        data = path.read_bytes()
        sections = _sections(data)
        table, text = sections.get(".gopclntab"), sections.get(".text")
        if table is None or text is None:
            raise ValueError(f"{path} has no Go function table")
        base = table.offset
        (magic,) = struct.unpack_from("<I", data, base)
        if magic not in _GO_118_MAGICS:
            raise ValueError(f"{path}: Go function table version {magic:#x} is older than Go 1.18")
        count, _, text_start, names, _, _, _, functions = struct.unpack_from("<qQQQQQQQ", data, base + 8)
        # Entries count from the table's text start, which a file may leave unset (0) for the loader to
        # fill; either way the start is `.text`'s, and perf reports places as offsets into the file.
        shift = text.offset + (text_start - text.address if text_start else 0)
        starts, labels = [], []
        for i in range(count):
            entry, info = struct.unpack_from("<II", data, base + functions + 8 * i)
            (name_at,) = struct.unpack_from("<i", data, base + functions + info + 4)
            start = base + names + name_at
            starts.append(entry + shift)
            labels.append(data[start : data.index(b"\0", start)].decode(errors="replace"))
        self._starts, self._labels = starts, labels

    def name(self, file_offset: int) -> str:
        index = bisect.bisect_right(self._starts, file_offset) - 1
        return self._labels[index] if index >= 0 else "?"
