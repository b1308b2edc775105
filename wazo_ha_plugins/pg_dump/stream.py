"""Streaming one table: ``COPY … TO STDOUT`` on the master piped into ``COPY … FROM STDIN`` on the slave.

The rows go through an OS pipe between two threads of this process: a
reader thread drains the master's COPY into the pipe, the calling thread
feeds the slave's COPY from it. Nothing is written to disk and memory stays
at the pipe's and the buffers' size (about 1 MiB each) whatever the table's.
Tables whose columns allow it travel in COPY's binary format, which both
servers produce and parse faster than text (see ``Table.binary``).

A master that fails mid-stream closes the pipe early, which the slave would
take for the end of the data: the reader's error is therefore re-raised
after the slave's COPY returns, and the caller rolls back.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import threading
from collections.abc import Callable

from psycopg2 import sql

from .catalog import Table

CHUNK = 1 << 20


class SourceFailed(Exception):
    """The master side of a table's stream failed; ``cause`` is the original error."""

    def __init__(self, table: str, cause: BaseException):
        self.table, self.cause = table, cause
        super().__init__(f"{table}: {cause}")


class _CountingReader(io.RawIOBase):
    """The slave's side of the pipe: counts what goes by, one call per chunk (not per row)."""

    def __init__(self, pipe, on_bytes: Callable[[int], None]):
        self._pipe = pipe
        self._on_bytes = on_bytes
        self.error: BaseException | None = None  # psycopg2 turns it into a vague "COPY failed": kept to re-raise

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._pipe.read(size)
            if data:
                self._on_bytes(len(data))
        except BaseException as exc:
            self.error = exc
            raise
        return data


def copy_table(
    source_cursor,
    target_cursor,
    table: Table,
    on_bytes: Callable[[int], None],
    *,
    binary: bool = False,
    into: sql.Composable | None = None,
    query: sql.Composable | None = None,
    columns: sql.Composable | None = None,
) -> int:
    """Stream ``table``'s rows from the master into the slave; returns the row count the slave loaded.

    The rows go into the slave's ``table``, or the table named ``into`` (a
    staging table with the same columns). It must be empty in the current
    transaction.
    ``query``: a ``SELECT`` run on the master instead of reading the whole
    table (its output columns those of ``columns``, by default the table's).
    ``binary``: use COPY's binary format when the table allows it (both
    databases UTF8, same types: the caller checked).
    Raises :class:`SourceFailed` when the master side failed, or the slave's
    error as is.
    """
    options = sql.SQL(" (FORMAT binary)" if binary and table.binary else "")
    columns = columns or table.column_list
    if query is None:
        copy_out = sql.SQL("COPY {} ({}) TO STDOUT{}").format(table.ident, columns, options)
    else:
        copy_out = sql.SQL("COPY ({}) TO STDOUT{}").format(query, options)
    copy_in = sql.SQL("COPY {} ({}) FROM STDIN{}").format(into or table.ident, columns, options)
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):  # a larger pipe means fewer thread switches; 64 KiB still works
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, CHUNK)
    # psycopg2 hands over COPY TO's output one row at a time: a C-level buffered
    # writer takes it without running Python code per row.
    writer = os.fdopen(write_fd, "wb", buffering=CHUNK)
    failure: list[BaseException] = []

    def drain_master() -> None:
        try:
            source_cursor.copy_expert(copy_out, writer, size=CHUNK)
        except BaseException as exc:  # reported by the calling thread
            failure.append(exc)
        finally:
            try:
                writer.close()
            except BrokenPipeError:  # the slave side stopped reading: its error is the one reported
                pass

    reader = threading.Thread(target=drain_master, name=f"copy-out-{table.name}", daemon=True)
    slave_error: BaseException | None = None
    with os.fdopen(read_fd, "rb", buffering=CHUNK) as pipe_in:
        counting = _CountingReader(pipe_in, on_bytes)
        reader.start()
        try:
            target_cursor.copy_expert(copy_in, counting, size=CHUNK)
        except BaseException as exc:
            slave_error = exc
        finally:
            pipe_in.close()  # a reader still writing gets EPIPE instead of blocking
            reader.join()
    # A master failure explains a truncated stream: report it rather than the slave's complaint.
    if failure and not isinstance(failure[0], BrokenPipeError):
        raise SourceFailed(table.name, failure[0]) from slave_error
    if counting.error is not None:  # our own side of the feed failed (e.g. interrupted)
        raise counting.error
    if slave_error is not None:
        raise slave_error
    return target_cursor.rowcount
