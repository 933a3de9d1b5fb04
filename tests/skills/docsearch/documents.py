"""Small generated documents (pdf, docx, md) for the docsearch tests; no binary fixtures in the repo."""

from __future__ import annotations

import io

from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    StreamObject,
    TextStringObject,
)

# A CMap mapping each 2-byte code to the same Unicode code point (BMP), so text extraction
# reads back exactly what was written; no font program is embedded (tests only extract).
_TO_UNICODE = b"""/CIDInit /ProcSet findresource begin
12 dict begin
begincmap
/CMapName /Identity-UCS def
/CMapType 2 def
1 begincodespacerange
<0000> <FFFF>
endcodespacerange
1 beginbfrange
<0000> <FFFF> <0000>
endbfrange
endcmap
CMapName currentdict /CMap defineresource pop
end
end"""


def _font(writer: PdfWriter) -> DictionaryObject:
    cmap = DecodedStreamObject()
    cmap.set_data(_TO_UNICODE)
    descendant = DictionaryObject({
        NameObject("/Type"): NameObject("/Font"),
        NameObject("/Subtype"): NameObject("/CIDFontType2"),
        NameObject("/BaseFont"): NameObject("/TestSans"),
        NameObject("/CIDSystemInfo"): DictionaryObject({
            NameObject("/Registry"): TextStringObject("Adobe"),
            NameObject("/Ordering"): TextStringObject("Identity"),
            NameObject("/Supplement"): NumberObject(0),
        }),
        NameObject("/DW"): NumberObject(1000),
    })
    return DictionaryObject({
        NameObject("/Type"): NameObject("/Font"),
        NameObject("/Subtype"): NameObject("/Type0"),
        NameObject("/BaseFont"): NameObject("/TestSans"),
        NameObject("/Encoding"): NameObject("/Identity-H"),
        NameObject("/DescendantFonts"): ArrayObject([writer._add_object(descendant)]),
        NameObject("/ToUnicode"): writer._add_object(cmap),
    })


def make_pdf(pages: list[list[str]]) -> bytes:
    """A PDF whose pages hold the given lines (any BMP text, Chinese included)."""
    writer = PdfWriter()
    font_ref = writer._add_object(_font(writer))
    for lines in pages:
        page = writer.add_blank_page(width=595, height=842)
        ops = ["BT", "/F1 12 Tf", "14 TL", "50 800 Td"]
        for line in lines:
            ops.append("<" + line.encode("utf-16-be").hex() + "> Tj T*")
        ops.append("ET")
        content = StreamObject()
        content._data = "\n".join(ops).encode("ascii")
        page[NameObject("/Contents")] = writer._add_object(content)
        page[NameObject("/Resources")] = DictionaryObject({
            NameObject("/Font"): DictionaryObject({NameObject("/F1"): font_ref}),
        })
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_docx(blocks: list[tuple[str, str]]) -> bytes:
    """A .docx from (style, text) blocks; style 'h1'..'h3' makes a heading, 'table' a 2-column row."""
    import docx

    document = docx.Document()
    for style, text in blocks:
        if style.startswith("h"):
            document.add_heading(text, level=int(style[1:]))
        elif style == "table":
            table = document.add_table(rows=1, cols=2)
            left, right = text.split("|")
            table.rows[0].cells[0].text, table.rows[0].cells[1].text = left.strip(), right.strip()
        else:
            document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
