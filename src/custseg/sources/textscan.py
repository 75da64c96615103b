"""Text files: hash, check the encoding and, if needed, transcode to UTF-8 in one pass.

A file's bytes are read once in 8 MB chunks (plain or gzip-compressed): the
SHA-256 is computed, the bytes are decoded with the given or detected
encoding (a decoding error names the byte and line), and a file that is not
UTF-8 is written to a temporary UTF-8 copy for DuckDB to read.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from custseg.sources.errors import IngestError

CHUNK = 8 << 20
SAMPLE = 256 << 10
_UTF8 = ("utf-8", "utf-8-sig", "ascii")


@dataclass
class Scan:
    """The result of :func:`scan_text`: hash, encoding, the UTF-8 file to read and its start."""

    content_hash: str
    encoding: str
    text_path: Path
    sample: str
    temp: Path | None = None


def encoding_name(enc: str) -> str:
    """A canonical, user-facing spelling of an encoding (``latin-1``, ``utf-8``, ``cp1252``)."""
    try:
        name = codecs.lookup(enc).name
    except LookupError:
        raise IngestError(f"unknown encoding {enc!r}; try utf-8, latin-1 or cp1252") from None
    return {"iso8859-1": "latin-1", "utf-8-sig": "utf-8-sig"}.get(name, name)


def open_bytes(path: Path):
    """``path`` opened for reading bytes, decompressed if it ends in ``.gz``."""
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def file_hash(path: Path) -> str:
    """SHA-256 of the bytes of ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def detect_encoding(sample: bytes) -> str:
    """Best guess of the encoding of ``sample``: UTF-8 if it decodes, else charset-normalizer's guess."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    guess = _guess(sample)
    if guess is None:
        raise IngestError("cannot detect the encoding; give one with --encoding (e.g. latin-1)")
    return guess


_WESTERN = ("cp1252", "latin_1", "iso8859_15")


def _guess(data: bytes) -> str | None:
    """charset-normalizer's best guess; among equally good guesses, prefer Western European ones."""
    from charset_normalizer import from_bytes

    results = list(from_bytes(data))
    if not results:
        return None
    best = results[0]
    tied = [r.encoding for r in results if r.chaos <= best.chaos + 0.01 and r.coherence >= best.coherence - 0.01]
    for enc in _WESTERN:
        if enc in tied:
            return encoding_name(enc)
    return encoding_name(best.encoding)


def _suggest_encoding(window: bytes, failed: str) -> str:
    guess = _guess(window)
    if guess and guess != failed and guess not in _UTF8:
        return guess
    return "latin-1" if failed in _UTF8 else "utf-8"


def scan_text(path: Path, label: str, encoding: str | None) -> Scan:
    """Hash, check (and if needed transcode to UTF-8) a text file in one pass.

    Raises
    ------
    IngestError
        If the file is empty or not valid in the given or detected encoding.
    """
    with open_bytes(path) as fh:
        first = fh.read(CHUNK)
    if not first.strip():
        raise IngestError(f"{label}: file is empty")
    enc = encoding_name(encoding) if encoding else detect_encoding(first[:SAMPLE])
    if enc in ("ascii", "utf-8"):
        enc = "utf-8"
    transcode = enc not in _UTF8
    h = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(enc)("strict")
    out = None
    temp = None
    if transcode:
        fd, name = tempfile.mkstemp(prefix="custseg-", suffix=".utf8" + "".join(path.suffixes[-1:]).replace(".gz", ""))
        temp = Path(name)
        out = os.fdopen(fd, "w", encoding="utf-8", newline="")
    sample_parts: list[str] = []
    sample_len = 0
    consumed = 0
    newlines = 0
    try:
        with open_bytes(path) as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                h.update(chunk)
                pending = decoder.getstate()[0]
                try:
                    text = decoder.decode(chunk, final=False)
                except UnicodeDecodeError as exc:
                    data = pending + chunk
                    offset = consumed - len(pending) + exc.start
                    line = newlines + data[: exc.start].count(b"\n") + 1
                    window = data[max(0, exc.start - 32768): exc.start + 32768]
                    raise IngestError(
                        f"{label}: not valid {enc} at byte {offset} (line {line}); "
                        f"try --encoding {_suggest_encoding(window, enc)}"
                    ) from None
                consumed += len(chunk)
                newlines += chunk.count(b"\n")
                if sample_len < SAMPLE:
                    sample_parts.append(text[: SAMPLE - sample_len])
                    sample_len += len(sample_parts[-1])
                if out is not None:
                    out.write(text)
            try:
                tail = decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise IngestError(
                    f"{label}: not valid {enc}: the file ends inside a character (byte {consumed}); "
                    f"try --encoding latin-1"
                ) from None
            if out is not None:
                out.write(tail)
    except BaseException:
        if out is not None:
            out.close()
            temp.unlink(missing_ok=True)
        raise
    if out is not None:
        out.close()
    sample = "".join(sample_parts).lstrip("\ufeff")
    return Scan(h.hexdigest(), enc, temp or path, sample, temp)
