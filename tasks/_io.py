"""The only code that reads or writes project data files.

Offers :func:`write_table` (atomic Parquet write: temp file in the same directory, then rename),
:func:`read_table` (Parquet read that checks the declared schema), :func:`atomic_write_bytes`,
:func:`atomic_write_text` and :func:`sha256_file`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class SchemaMismatchError(ValueError):
    """A Parquet file does not carry the schema its reader expects."""


def _atomic(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return ``path``."""
    return _atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; return ``path``."""
    return _atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_table(table: pa.Table, path: Path, schema: pa.Schema | None = None) -> Path:
    """Write ``table`` as Parquet at ``path`` atomically, casting to ``schema`` when given."""
    if schema is not None and not table.schema.equals(schema, check_metadata=False):
        table = table.select(schema.names).cast(schema)
    if schema is not None:
        table = table.replace_schema_metadata(schema.metadata)
    return _atomic(path, lambda tmp: pq.write_table(table, tmp))


def read_table(path: Path, schema: pa.Schema | None = None) -> pa.Table:
    """Read a Parquet file; when ``schema`` is given, fail unless the file carries exactly that schema."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file. Check the path, or produce it first.")
    table = pq.read_table(path)
    if schema is not None and not table.schema.equals(schema, check_metadata=False):
        raise SchemaMismatchError(
            f"{path}: schema {table.schema.names} does not match the expected "
            f"{(schema.metadata or {}).get(b'name', b'?').decode()} schema {schema.names}. "
            "Was it written by another tool or an older version? Regenerate it."
        )
    return table


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
