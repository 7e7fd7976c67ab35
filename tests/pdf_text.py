"""The text of a PDF made by fpdf2 with an embedded TrueType font, read as a PDF reader reads it
(no PDF library is in the dev dependencies, and fpdf2's output is regular enough to read here).

Every string a page shows is a run of two-byte character ids; the font's ToUnicode CMap says which
character each id is (what a reader copies or searches), and its CIDToGIDMap which glyph of the
embedded (subset) font draws it. `read_pdf` gives each page's text, one drawn line per line, fails
on a character drawn as `.notdef` (the font's "no such glyph" box), and says which characters were
drawn by a glyph with no outline (a space; a zero-width joiner; or a glyph that is missing): text
found there, not among those, is text the reader sees.
"""

from __future__ import annotations

import itertools
import re
import struct
import zlib
from dataclasses import dataclass

_OBJECT = re.compile(rb"(\d+) 0 obj\n")
_TOKEN = re.compile(rb"/(\w+) [\d.]+ Tf|\((?:\\[\s\S]|[^\\()])*\)|\bET\b")
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


@dataclass(frozen=True)
class PdfText:
    pages: list[str]
    blank: set[str]  # the characters drawn by a glyph with no outline


@dataclass(frozen=True)
class _Font:
    to_unicode: dict[int, str]
    cid_to_gid: bytes
    outline_length: list[int]  # by glyph id: how many bytes of `glyf` draw it (0: nothing)


def _objects(pdf: bytes) -> dict[int, tuple[bytes, bytes]]:
    """Each object's dictionary and its stream (decompressed), by object number, found where the
    cross-reference table says (so no byte of a stream is taken for an object)."""
    xref = int(re.findall(rb"startxref\n(\d+)", pdf)[-1])
    table = pdf[xref:].split(b"trailer")[0]
    first = int(re.match(rb"xref\n(\d+) \d+\n", table)[1])  # type: ignore[index]
    objects = {}
    for number, (offset, kind) in enumerate(re.findall(rb"(\d{10}) \d{5} ([nf])", table), start=first):
        if kind != b"n":
            continue
        found = _OBJECT.match(pdf, int(offset))
        assert found, (number, offset)
        assert int(found[1]) == number, (number, offset)
        start, stream_at, end_at = found.end(), pdf.find(b"stream\n", found.end()), pdf.index(b"endobj", found.end())
        if stream_at == -1 or end_at < stream_at:  # no stream (a stream's own bytes come after "stream")
            objects[number] = (pdf[start:end_at], b"")
            continue
        head = pdf[start:stream_at]
        length = int(re.search(rb"/Length (\d+)", head)[1])  # type: ignore[index]
        stream = pdf[stream_at + len(b"stream\n") : stream_at + len(b"stream\n") + length]
        objects[number] = (head, zlib.decompress(stream) if b"/FlateDecode" in head else stream)
    return objects


def _ref(head: bytes, key: bytes) -> int:
    found = re.search(rb"/" + key + rb" (\d+) 0 R", head)
    assert found, (key, head)
    return int(found[1])


def _cmap(text: bytes) -> dict[int, str]:
    codes: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar\n(.*?)endbfchar", text, re.S):
        for code, char in re.findall(rb"<([0-9A-Fa-f]+)> <([0-9A-Fa-f]+)>", block):
            codes[int(code, 16)] = bytes.fromhex(char.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange\n(.*?)endbfrange", text, re.S):
        for first, last, char in re.findall(rb"<([0-9A-Fa-f]+)> <([0-9A-Fa-f]+)> <([0-9A-Fa-f]+)>", block):
            for offset in range(int(last, 16) - int(first, 16) + 1):
                codes[int(first, 16) + offset] = chr(int(char, 16) + offset)
    return codes


def outline_lengths(ttf: bytes) -> list[int]:
    """For each glyph of a TrueType font, the length of its outline in `glyf` (from `loca`)."""
    (tables,) = struct.unpack(">H", ttf[4:6])
    offsets = {}
    for n in range(tables):
        tag, _, offset, length = struct.unpack(">4sIII", ttf[12 + 16 * n : 28 + 16 * n])
        offsets[tag] = (offset, length)
    head, _ = offsets[b"head"]
    (long_offsets,) = struct.unpack(">h", ttf[head + 50 : head + 52])
    loca, length = offsets[b"loca"]
    if long_offsets:
        starts = struct.unpack(f">{length // 4}I", ttf[loca : loca + length])
    else:
        starts = tuple(2 * s for s in struct.unpack(f">{length // 2}H", ttf[loca : loca + length]))
    return [after - before for before, after in itertools.pairwise(starts)]


def _unescape(literal: bytes) -> bytes:
    out, index = bytearray(), 0
    while index < len(literal):
        byte = literal[index : index + 1]
        if byte != b"\\":
            out += byte
            index += 1
            continue
        following = literal[index + 1 : index + 2]
        octal = re.match(rb"[0-7]{1,3}", literal[index + 1 : index + 4])
        if octal:
            out.append(int(octal[0], 8) & 0xFF)
            index += 1 + len(octal[0])
        else:
            out += _ESCAPES.get(following, following)
            index += 2
    return bytes(out)


def read_pdf(pdf: bytes) -> PdfText:
    """Each page's text, in page order (the strings of one text object, a drawn line, joined: one
    line each), and which characters no outline draws."""
    objects = _objects(pdf)
    pages_tree = next(head for head, _ in objects.values() if b"/Type /Pages" in head)
    kids = [int(n) for n in re.findall(rb"(\d+) 0 R", pages_tree.split(b"/Kids [")[1].split(b"]")[0])]
    fonts: dict[int, _Font] = {}
    pages: list[str] = []
    blank: set[str] = set()
    for page in kids:
        page_head, _ = objects[page]
        resources, _ = objects[_ref(page_head, b"Resources")]
        names = {name: int(n) for name, n in re.findall(rb"/(\w+) (\d+) 0 R", resources.split(b"/Font <<")[1])}
        lines, line, font = [], "", None
        for token in _TOKEN.finditer(objects[_ref(page_head, b"Contents")][1]):
            if token[1]:
                font = fonts.get(names[token[1]]) or fonts.setdefault(names[token[1]], _font(objects, names[token[1]]))
            elif token[0] == b"ET":
                if line:
                    lines.append(line)
                line = ""
            else:
                assert font is not None, "a string shown before any font was set"
                line += _decode(font, _unescape(token[0][1:-1]), blank)
        pages.append("\n".join(lines))
    return PdfText(pages, blank)


def _font(objects: dict[int, tuple[bytes, bytes]], number: int) -> _Font:
    head, _ = objects[number]
    assert b"/Subtype /Type0" in head, "only embedded TrueType (CID) fonts are read here"
    descendant, _ = objects[int(re.search(rb"/DescendantFonts \[(\d+) 0 R", head)[1])]  # type: ignore[index]
    descriptor, _ = objects[_ref(descendant, b"FontDescriptor")]
    return _Font(
        to_unicode=_cmap(objects[_ref(head, b"ToUnicode")][1]),
        cid_to_gid=objects[_ref(descendant, b"CIDToGIDMap")][1],
        outline_length=outline_lengths(objects[_ref(descriptor, b"FontFile2")][1]),
    )


def _decode(font: _Font, codes: bytes, blank: set[str]) -> str:
    text = ""
    for (cid,) in struct.iter_unpack(">H", codes):
        char = font.to_unicode[cid]
        (gid,) = struct.unpack(">H", font.cid_to_gid[2 * cid : 2 * cid + 2])
        assert gid != 0, f"{char!r} is drawn as .notdef"
        if not font.outline_length[gid]:
            blank.add(char)
        text += char
    return text
