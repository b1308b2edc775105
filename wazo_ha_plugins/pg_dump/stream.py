"""Streaming one table: ``COPY … TO STDOUT`` on the master piped into ``COPY … FROM STDIN`` on the slave.

The rows go through an OS pipe between two threads of this process: a
reader thread drains the master's COPY into the pipe, the calling thread
feeds the slave's COPY from it. Nothing is written to disk and memory stays
at the pipe's and the buffers' size whatever the table's.

A master that fails mid-stream closes the pipe early, which the slave would
take for the end of the data: the reader's error is therefore re-raised
after the slave's COPY returns, and the caller rolls back.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable

from psycopg2 import sql

from .catalog import Table

CHUNK = 1 << 16


class SourceFailed(Exception):
    """The master side of a table's stream failed; ``cause`` is the original error."""

    def __init__(self, table: str, cause: BaseException):
        self.table, self.cause = table, cause
        super().__init__(f"{table}: {cause}")


class _CountingWriter(io.RawIOBase):
    """Counts what the master sends and reports it; the bytes go on to the pipe."""

    def __init__(self, fd: int, on_bytes: Callable[[int], None]):
        self._out = os.fdopen(fd, "wb", buffering=CHUNK)
        self._on_bytes = on_bytes

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._out.write(data)
        self._on_bytes(len(data))
        return len(data)

    def close(self) -> None:
        try:
            self._out.close()
        except BrokenPipeError:  # the slave side stopped reading: its error is the one reported
            pass
        super().close()


def copy_table(source_cursor, target_cursor, table: Table, on_bytes: Callable[[int], None]) -> int:
    """Stream ``table``'s rows from the master into the slave; returns the row count the slave loaded.

    The slave's table must already be empty in the current transaction.
    Raises :class:`SourceFailed` when the master side failed, or the slave's
    error as is.
    """
    copy_out = sql.SQL("COPY {} ({}) TO STDOUT").format(table.ident, table.column_list)
    copy_in = sql.SQL("COPY {} ({}) FROM STDIN").format(table.ident, table.column_list)
    read_fd, write_fd = os.pipe()
    writer = _CountingWriter(write_fd, on_bytes)
    failure: list[BaseException] = []

    def drain_master() -> None:
        try:
            source_cursor.copy_expert(copy_out, writer, size=CHUNK)
        except BaseException as exc:  # reported by the calling thread
            failure.append(exc)
        finally:
            writer.close()

    reader = threading.Thread(target=drain_master, name=f"copy-out-{table.name}", daemon=True)
    slave_error: BaseException | None = None
    with os.fdopen(read_fd, "rb", buffering=CHUNK) as pipe_in:
        reader.start()
        try:
            target_cursor.copy_expert(copy_in, pipe_in, size=CHUNK)
        except BaseException as exc:
            slave_error = exc
        finally:
            pipe_in.close()  # a reader still writing gets EPIPE instead of blocking
            reader.join()
    # A master failure explains a truncated stream: report it rather than the slave's complaint.
    if failure and not isinstance(failure[0], BrokenPipeError):
        raise SourceFailed(table.name, failure[0]) from slave_error
    if slave_error is not None:
        raise slave_error
    return target_cursor.rowcount
