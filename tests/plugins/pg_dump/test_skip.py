"""Skip when unchanged: the fingerprint of the replicated data (master and slave) against the last good copy."""

from __future__ import annotations

import pytest


@pytest.fixture
def copied(pair):
    """A pair right after a good copy, with the plugin (and its state) that made it."""
    store = pair.store()
    plugin = pair.plugin(store)
    assert plugin.replicate(pair.peer).outcome == "copied"
    return plugin


def test_unchanged_run_is_skipped_and_writes_nothing(pair, copied):
    xmins_before = pair.slave_sql("SELECT min(xmin::text), max(xmin::text) FROM userfeatures")

    result = copied.replicate(pair.peer)

    assert result.outcome == "skipped"
    assert result.figures["rows"] == 0 and result.figures["bytes"] == 0
    assert pair.slave_sql("SELECT min(xmin::text), max(xmin::text) FROM userfeatures") == xmins_before


@pytest.mark.parametrize(
    "change",
    [
        "INSERT INTO cel (eventtype, eventtime, userdeftype, cid_name, cid_num, cid_ani, cid_rdnis, cid_dnid, exten,"
        " context, channame, appname, appdata, amaflags, accountcode, peeraccount, uniqueid, linkedid, userfield, peer)"
        " VALUES ('HANGUP', now(), '', '', '', '', '', '', '', '', '', '', '', 3, '', '', '1', '1', '', '')",
        "UPDATE infos SET timezone = 'America/Montreal'",
        "DELETE FROM queue_log WHERE id IN (SELECT min(id) FROM queue_log)",
    ],
    ids=["insert-cel", "update-infos", "delete-queue_log"],
)
def test_a_change_in_excluded_tables_only_is_skipped(pair, copied, change):
    pair.master_sql(change)

    assert copied.replicate(pair.peer).outcome == "skipped"


@pytest.mark.parametrize(
    "change, check, expected",
    [
        (
            "UPDATE userfeatures SET firstname = 'Zoë' WHERE id = 100007",
            "SELECT firstname FROM userfeatures WHERE id = 100007",
            "Zoë",
        ),
        ("DELETE FROM extensions WHERE id = 100003", "SELECT count(*) FROM extensions WHERE id = 100003", "0"),
        (
            "UPDATE tenant SET webrtc_sip_template_uuid = NULL",
            "SELECT webrtc_sip_template_uuid IS NULL FROM tenant WHERE slug = 'acme'",
            "t",
        ),
        ("SELECT nextval('userfeatures_id_seq')", "SELECT last_value FROM userfeatures_id_seq", "100041"),
    ],
    ids=["update", "delete", "fk-cycle-column", "sequence-only"],
)
def test_any_replicated_change_is_copied(pair, copied, change, check, expected):
    pair.master_sql(change)

    assert copied.replicate(pair.peer).outcome == "copied"
    assert pair.slave_sql(check).strip() == expected


def test_a_slave_edited_by_hand_is_copied_again_when_the_operator_discards_the_edit(pair, copied):
    pair.slave_sql("UPDATE userfeatures SET firstname = 'edited on the slave' WHERE id = 100001")

    assert copied.replicate(pair.peer, discard_slave_changes=True).outcome == "copied"
    assert pair.slave_sql("SELECT firstname FROM userfeatures WHERE id = 100001").strip() == "Prénom 1"


def test_force_copies_even_when_unchanged(pair, copied):
    assert copied.replicate(pair.peer, force=True).outcome == "copied"
    assert copied.replicate(pair.peer).outcome == "skipped"


def test_a_new_exclusion_list_counts_as_a_change(pair, copied):
    # The same state store (same file), another replicated set: the fingerprint differs.
    other = pair.plugin(pair.store(), exclude_tables_add=["voicemail"])
    assert other.replicate(pair.peer).outcome == "copied"
