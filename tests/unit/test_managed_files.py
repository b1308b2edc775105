"""Marked blocks in someone else's file, on bytes; snapshots that put a file back exactly, symlinks included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wazo_ha_core.errors import EditStepError
from wazo_ha_core.managed_files import ExactSnapshot, edit_marked_block, line_ending, replace_file

BEGIN, END = "# BEGIN test", "# END test"
PATH = Path("/etc/site.conf")
NEWLINES = st.sampled_from([b"\n", b"\r\n", b"\r"])
# Lines of any bytes but line breaks, never exactly a marker.
LINES = st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")), max_size=6)


def document(lines: list[bytes], newline: bytes, final_newline: bool) -> bytes:
    text = newline.join(lines)
    return text + newline if final_newline and lines else text


@settings(max_examples=500, deadline=None)
@given(LINES, NEWLINES, st.booleans(), st.lists(st.text(st.characters(min_codepoint=32, max_codepoint=126))))
def test_insert_then_remove_gives_back_every_byte(lines, newline, final_newline, block):
    original = document(lines, newline, final_newline)
    inserted = edit_marked_block(PATH, original, BEGIN, END, block)
    own = line_ending(original)
    assert inserted == b"".join(line.encode() + own for line in (BEGIN, *block, END)) + original
    assert edit_marked_block(PATH, inserted, BEGIN, END, None) == original
    # Inserting again replaces the block instead of adding a second one.
    assert edit_marked_block(PATH, inserted, BEGIN, END, block) == inserted


@settings(max_examples=300, deadline=None)
@given(LINES, NEWLINES, st.lists(st.sampled_from(["begin", "end"]), min_size=1, max_size=4), st.data())
def test_anything_but_one_begin_then_one_end_is_refused(lines, newline, markers, data):
    if markers == ["begin", "end"]:
        return
    body, position = list(lines), 0
    for marker in markers:  # inserted in this order, each after the previous one
        position = data.draw(st.integers(position, len(body)))
        body.insert(position, (BEGIN if marker == "begin" else END).encode())
        position += 1
    content = document(body, newline, True)
    for block in (None, ["host all"]):
        with pytest.raises(EditStepError, match=str(PATH)):
            edit_marked_block(PATH, content, BEGIN, END, block)


def test_line_endings_of_the_file_are_used():
    assert line_ending(b"a\r\nb\n") == b"\r\n"
    assert line_ending(b"a\rb") == b"\r"
    assert line_ending(b"no newline") == b"\n" and line_ending(b"") == b"\n"
    cr = b"# caf\xe9\rlocal all all peer\r"
    assert edit_marked_block(PATH, cr, BEGIN, END, ["x"]) == b"# BEGIN test\rx\r# END test\r" + cr


def test_snapshot_puts_a_symlink_back_as_the_same_link(tmp_path):
    target = tmp_path / "real.conf"
    target.write_bytes(b"original\r\n")
    target.chmod(0o640)
    link = tmp_path / "site.conf"
    link.symlink_to("real.conf")
    snapshot = ExactSnapshot.take(link)
    # Written through the link: the link stays, the target changes.
    assert replace_file(link, b"changed\n", 0o640, follow_symlink=True)
    assert link.is_symlink() and target.read_bytes() == b"changed\n"
    snapshot.restore()
    assert os.readlink(link) == "real.conf" and target.read_bytes() == b"original\r\n"
    # Replaced by a regular file (as a careless tool would): restore makes it a link again.
    link.unlink()
    link.write_bytes(b"regular")
    snapshot.restore()
    assert link.is_symlink() and os.readlink(link) == "real.conf"
    assert target.read_bytes() == b"original\r\n" and target.stat().st_mode & 0o777 == 0o640


def test_snapshot_of_a_regular_file_replaces_a_link_put_there(tmp_path):
    path = tmp_path / "site.conf"
    path.write_bytes(b"mine")
    snapshot = ExactSnapshot.take(path)
    path.unlink()
    (tmp_path / "other").write_bytes(b"other")
    path.symlink_to("other")
    snapshot.restore()
    assert not path.is_symlink() and path.read_bytes() == b"mine"
    assert (tmp_path / "other").read_bytes() == b"other"
