"""The pending skipped runs' file (:mod:`wazo_ha_core.skip_cache.cache`) fed damaged lines: each is left out
with a warning naming it, the good ones are journaled in order, and the file is emptied."""

import json

from wazo_ha_core.journal import Event, utcnow
from wazo_ha_core.skip_cache import cache


def _event(message: str) -> Event:
    now = utcnow()
    return Event(kind="replication", started_at=now, ended_at=now, outcome="skipped", message=message, figures={})


def test_damaged_pending_lines_are_left_out_and_the_good_ones_journaled_in_order(tmp_path, caplog):
    database = tmp_path / "state.db"
    cache.append_pending(database, _event("first"))
    good = cache.pending_path(database).read_bytes()
    hostile = [
        b"not json",
        b'"a string"',
        b"[1, 2]",
        b"42",
        json.dumps({"kind": "replication"}).encode(),  # fields missing
        json.dumps({**json.loads(good), "started_at": "yesterday"}).encode(),
        json.dumps({**json.loads(good), "figures": "x"}).encode(),
        b"\xff\xfe",
    ]
    with open(cache.pending_path(database), "ab") as stream:
        stream.write(b"\n".join(hostile) + b"\n")
    cache.append_pending(database, _event("second"))

    journaled: list[Event] = []
    assert cache.fold_pending(database, journaled.append) == 2

    assert [event.message for event in journaled] == ["first", "second"]
    assert cache.pending_path(database).read_bytes() == b""
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert "not json" in warned and "yesterday" in warned
