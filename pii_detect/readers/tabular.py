"""CSV/TSV and Parquet readers: each non-empty cell of a named text column is one document.

Offers :func:`read_csv_file` (streaming rows through :mod:`csv`; TSV when the extension is ``.tsv``) and
:func:`read_parquet_file` (record batch by record batch, only the text columns). Missing columns, non-text
columns and malformed rows are recorded and skipped.
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pii_detect.config import ReaderOptions
from pii_detect.readers.base import Document, IssueLog, decode, format_key, is_binary, note_length, open_binary

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long cells must be read (and chunked), not rejected


def _decoded_lines(fh, source: str, issues: IssueLog | None) -> Iterator[str]:
    for lineno, raw in enumerate(fh, 1):
        yield decode(raw, issues, source, f"line {lineno}")


def read_csv_file(
    path: Path, source: str, opts: ReaderOptions, gz: bool, delimiter: str, issues: IssueLog | None = None
) -> Iterator[Document]:
    """Yield ``csv:row=N:col=C`` documents for the configured text columns present in the header."""
    with open_binary(path, gz) as fh:
        head = fh.peek(8192)[:8192] if hasattr(fh, "peek") else b""
        if not head:
            if issues is not None:
                issues.add(source, "", "empty", "file has no content")
            return
        if is_binary(head):
            if issues is not None:
                issues.add(source, "", "binary", "NUL bytes in the first 8 KiB; skipped")
            return
        reader = csv.reader(_decoded_lines(fh, source, issues), delimiter=delimiter)
        header = next(reader, None)
        if not header:
            if issues is not None:
                issues.add(source, "", "empty", "no header row")
            return
        wanted = [(c, header.index(c)) for c in opts.text_columns if c in header]
        for col in opts.text_columns:
            if col not in header and issues is not None:
                issues.add(source, f"column {col}", "missing_column", f"header has {len(header)} columns; skipped")
        if not wanted:
            return
        row = -1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                row += 1
                if issues is not None:
                    issues.add(source, f"row {row}", "malformed_row", f"{exc}; skipped")
                continue
            row += 1
            for col, idx in wanted:
                if idx < len(cells) and cells[idx].strip():
                    text = cells[idx]
                    note_length(text, issues, source, f"row {row}")
                    yield Document(source, format_key("csv", row=row, col=col), text, len(text))


def _open_parquet(path: Path, gz: bool, spool) -> pq.ParquetFile:
    if not gz:
        return pq.ParquetFile(path)
    with open_binary(path, True) as fh:
        shutil.copyfileobj(fh, spool, 1 << 20)  # gzip streams are not seekable: spool to a temp file on disk
    spool.seek(0)
    return pq.ParquetFile(spool)


def read_parquet_file(
    path: Path, source: str, opts: ReaderOptions, gz: bool, issues: IssueLog | None = None
) -> Iterator[Document]:
    """Yield ``parquet:row=N:col=C`` documents, reading only the text columns, one record batch at a time."""
    with tempfile.TemporaryFile() as spool:
        pf = _open_parquet(path, gz, spool)
        schema = pf.schema_arrow
        columns = []
        for col in opts.text_columns:
            if col not in schema.names:
                if issues is not None:
                    issues.add(source, f"column {col}", "missing_column", f"file has {schema.names[:20]}; skipped")
            elif not (pa.types.is_string(ctype := schema.field(col).type) or pa.types.is_large_string(ctype)):
                if issues is not None:
                    issues.add(source, f"column {col}", "not_text", f"type {ctype}; skipped")
            else:
                columns.append(col)
        if not columns:
            return
        if pf.metadata.num_rows == 0 and issues is not None:
            issues.add(source, "", "empty", "no rows")
        offset = 0
        for batch in pf.iter_batches(batch_size=opts.batch_rows, columns=columns):
            for col in columns:
                for i, text in enumerate(batch.column(col).to_pylist()):
                    if text and text.strip():
                        note_length(text, issues, source, f"row {offset + i}")
                        yield Document(source, format_key("parquet", row=offset + i, col=col), text,
                                       len(text.encode("utf-8", "surrogatepass")))
            offset += batch.num_rows
