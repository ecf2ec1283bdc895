"""PDF bombs for tests: tiny files that make a PDF reader do unbounded work."""
import zlib

from tests.pdf_maker import write_pdf


def _deflate(pattern: bytes, total: int) -> bytes:
    comp = zlib.compressobj(9)
    block = pattern * (1_000_000 // len(pattern))
    parts = [comp.compress(block) for _ in range(total // len(block))]
    return b"".join(parts) + comp.flush()


def _one_page(content: bytes, flate: bool) -> bytes:
    filt = b" /Filter /FlateDecode" if flate else b""
    return write_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d%s >>\nstream\n" % (len(content), filt) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


def flate_bomb(megabytes: int = 400) -> bytes:
    return _one_page(_deflate(b" ", megabytes * 1_000_000), flate=True)


def operator_bomb(operators: int = 5_000_000) -> bytes:
    return _one_page(_deflate(b"(a) Tj ", operators * 7), flate=True)


def page_tree_bomb(pages: int = 200_000) -> bytes:
    kids = b" ".join(b"3 0 R" for _ in range(pages))
    return write_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ])
