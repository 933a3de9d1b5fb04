"""Split sections into retrieval chunks sized for the embedder, never across a heading."""

from __future__ import annotations

import re
from dataclasses import dataclass

from skills.docsearch.extract import Section

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_WORD = re.compile(r"[^\s\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
# Sentence ends: Chinese full stops need no space after them; Latin ones do.
_SENTENCE_END = re.compile(r"(?<=[。！？；!?])|(?<=[.;:])\s+")


@dataclass(frozen=True)
class Chunk:
    """One retrievable passage; `section` is the heading path it came from (for the citation)."""

    ordinal: int
    section: str
    text: str


def size(text: str) -> int:
    """A token estimate in the e5 (XLM-R) vocabulary: about one per CJK character, ~1.3 per word."""
    return len(_CJK.findall(text)) + round(1.3 * len(_WORD.findall(text)))


def _sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s and s.strip()]


def _hard_split(text: str, max_units: int) -> list[str]:
    """Last resort for a sentence longer than a chunk: cut at the unit budget."""
    pieces, current = [], ""
    for token in re.findall(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]|\S+\s*|\s+", text):
        if current and size(current + token) > max_units:
            pieces.append(current.strip())
            current = ""
        current += token
    if current.strip():
        pieces.append(current.strip())
    return pieces


def _pieces(text: str, max_units: int) -> list[str]:
    """Paragraphs, or their sentences when a paragraph is too long, or cut sentences."""
    pieces = []
    for paragraph in re.split(r"\n\s*\n|\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if size(paragraph) <= max_units:
            pieces.append(paragraph)
            continue
        for sentence in _sentences(paragraph):
            pieces.extend([sentence] if size(sentence) <= max_units else _hard_split(sentence, max_units))
    return pieces


def _join(pieces: list[str]) -> str:
    out = ""
    for piece in pieces:
        # No space between two Chinese pieces; a newline keeps paragraphs apart.
        out = piece if not out else out + "\n" + piece
    return out


def chunk_sections(sections: list[Section], max_units: int = 200, overlap_units: int = 40) -> list[Chunk]:
    """Pack pieces greedily up to `max_units`; the next chunk repeats up to `overlap_units` of the last."""
    if overlap_units >= max_units:
        raise ValueError("overlap must be smaller than the chunk size")
    chunks: list[Chunk] = []
    for section in sections:
        current: list[str] = []
        for piece in _pieces(section.text, max_units):
            if current and size(_join(current + [piece])) > max_units:
                chunks.append(Chunk(len(chunks), section.heading, _join(current)))
                carried: list[str] = []
                for previous in reversed(current):
                    kept = [previous, *carried]
                    if size(_join([*kept, piece])) > max_units or size(_join(kept)) > overlap_units:
                        break
                    carried.insert(0, previous)
                current = carried
            current.append(piece)
        if current:
            chunks.append(Chunk(len(chunks), section.heading, _join(current)))
    return chunks
