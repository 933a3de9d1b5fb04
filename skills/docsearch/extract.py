"""Text out of uploaded files (txt, md, pdf, docx) as sections that keep their headings for citations."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # python-docx loads only when a .docx arrives
    from docx.document import Document as DocxDocument

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".pdf", ".docx")


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path ("Leave policy > Annual leave"; "p. 3" for PDF pages)."""

    heading: str
    text: str


class ExtractionError(ValueError):
    """The file cannot be read as a document; the message is shown to the operator."""


def extract_sections(filename: str, data: bytes) -> list[Section]:
    """Sections of the document in reading order; raises ExtractionError for unreadable files."""
    suffix = PurePath(filename).suffix.lower()
    readers = {".txt": _txt, ".md": _markdown, ".markdown": _markdown, ".pdf": _pdf, ".docx": _docx}
    if suffix not in readers:
        raise ExtractionError(f"unsupported file type {suffix or '(none)'}; use one of {', '.join(SUPPORTED_SUFFIXES)}")
    if not data:
        raise ExtractionError("the file is empty")
    sections = [s for s in readers[suffix](data) if s.text.strip()]
    if not sections:
        raise ExtractionError("no text found in the file (a scanned PDF needs OCR first)")
    return sections


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030, the superset of GBK that Chinese Windows editors write."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ExtractionError("the text file is neither UTF-8 nor GB18030")


def _txt(data: bytes) -> list[Section]:
    return [Section("", decode_text(data).replace("\r\n", "\n"))]


_ATX = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SETEXT = re.compile(r"^(=+|-+)\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


class _HeadingPath:
    """The stack of headings above the current line; '>'-joined for citations."""

    def __init__(self) -> None:
        self.levels: list[tuple[int, str]] = []

    def push(self, level: int, title: str) -> None:
        self.levels = [(lv, t) for lv, t in self.levels if lv < level] + [(level, title.strip())]

    def __str__(self) -> str:
        return " > ".join(t for _, t in self.levels)


def _markdown(data: bytes) -> list[Section]:
    sections: list[Section] = []
    path = _HeadingPath()
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        if lines:
            sections.append(Section(str(path), "\n".join(lines).strip()))
            lines.clear()

    for line in decode_text(data).replace("\r\n", "\n").split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _ATX.match(line)
        if heading:
            flush()
            path.push(len(heading.group(1)), heading.group(2))
        elif not in_fence and _SETEXT.match(line) and lines and lines[-1].strip():
            title = lines.pop()  # the line above "===" / "---" is a heading
            flush()
            path.push(1 if line.startswith("=") else 2, title)
        else:
            lines.append(line)
    flush()
    return sections


def _pdf(data: bytes) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("the PDF is password-protected")
        return [Section(f"p. {n}", page.extract_text() or "") for n, page in enumerate(reader.pages, start=1)]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, ExtractionError):
            raise
        raise ExtractionError(f"not a readable PDF: {exc}") from exc


def _heading_level(style_name: str) -> int | None:
    """'Heading 2' → 2, '标题 1' → 1, 'Title' → 0; None for body styles."""
    if style_name in ("Title", "标题"):
        return 0
    found = re.match(r"^(?:Heading|标题)\s*(\d)$", style_name)
    return int(found.group(1)) if found else None


def _docx_blocks(document: DocxDocument) -> Iterator[tuple[str, str]]:
    """(style name, text) of paragraphs and table rows in body order."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            yield (block.style.name if block.style is not None else ""), block.text
        elif isinstance(block, Table):
            for row in block.rows:
                cells: list[str] = []
                for cell in row.cells:  # merged cells repeat; keep each text once per row
                    if not cells or cells[-1] != cell.text.strip():
                        cells.append(cell.text.strip())
                yield "", " | ".join(cells)


def _docx(data: bytes) -> list[Section]:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ExtractionError(f"not a readable .docx file: {exc}") from exc
    sections: list[Section] = []
    path = _HeadingPath()
    lines: list[str] = []
    for style, text in _docx_blocks(document):
        level = _heading_level(style)
        if level is not None and text.strip():
            if lines:
                sections.append(Section(str(path), "\n".join(lines)))
                lines = []
            path.push(level, text)
        elif text.strip():
            lines.append(text)
    if lines:
        sections.append(Section(str(path), "\n".join(lines)))
    return sections
