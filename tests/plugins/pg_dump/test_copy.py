"""A copy on Wazo's real schema: what is replicated, what is not, and the awkward values."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.rig.wazo_data import NASTY

from .conftest import SLAVE_UUID, content

EXCLUDED_PRESENT = [
    "cel",
    "dhcp",
    "queue_log",
    "session",
    "stat_agent",
    "stat_agent_periodic",
    "stat_call_on_queue",
    "stat_queue",
    "stat_queue_periodic",
    "mail",
    "netiface",
    "resolvconf",
    "infos",
]


@pytest.mark.parametrize("write_mode", ["changed_rows", "truncate"])
def test_copy_makes_every_replicated_table_and_sequence_equal_and_leaves_the_rest(pair, write_mode):
    master_before, slave_before = content(pair.master), content(pair.slave)
    # "Excluded tables (with their *_id_seq sequences)" (WAZO-FACTS)
    excluded_sequences = [f"{name}_id_seq" for name in EXCLUDED_PRESENT if f"{name}_id_seq" in master_before]
    assert "cel_id_seq" in excluded_sequences and len(excluded_sequences) == 11
    assert master_before["userfeatures"] != slave_before["userfeatures"]

    result = pair.plugin(write_mode=write_mode).replicate(pair.peer)

    assert result.outcome == "copied"
    master_after, slave_after = content(pair.master), content(pair.slave)
    assert master_after == master_before, "the master must not be written"
    excluded = set(EXCLUDED_PRESENT) | set(excluded_sequences)
    replicated = [name for name in master_before if name not in excluded and not name.startswith("wazo_ha.")]
    assert len(replicated) > 150  # 121 tables minus exclusions, plus sequences
    differing = [name for name in replicated if slave_after[name] != master_before[name]]
    assert differing == []
    for name in [*EXCLUDED_PRESENT, *excluded_sequences, "wazo_ha.event", "wazo_ha.event_id_seq"]:
        assert slave_after[name] == slave_before[name], f"{name} must keep the slave's rows"
    assert SLAVE_UUID in slave_after["infos"][0]
    sequences = int(pair.master_sql("SELECT count(*) FROM pg_sequences WHERE schemaname = 'public'"))
    assert result.figures["sequences"] == sequences - len(excluded_sequences)
    existing = table_names(pair)
    tables = [name for name in replicated if name in existing]
    assert result.figures["tables"] == len(tables)
    if write_mode == "truncate":  # every table emptied and reloaded
        assert result.figures["written_tables"] == len(tables)
        written = sum(len(master_before[name]) for name in tables)
    else:  # only the tables that differ; in those with a primary key only the rows that differ
        changed = [name for name in tables if master_before[name] != slave_before[name]]
        assert 0 < result.figures["written_tables"] == len(changed) < len(tables)
        keyed = keyed_tables(pair)
        written = removed = 0
        for name in changed:
            new, old = master_before[name], slave_before[name]
            written += len(multiset_minus(new, old)) if name in keyed else len(new)
            removed += len(multiset_minus(old, new)) if name in keyed else len(old)
        assert result.figures["deleted"] == removed > 0
    assert result.figures["rows"] == written > 0
    assert result.figures["bytes"] > 0


def table_names(pair) -> set[str]:
    return set(pair.master_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").split())


def keyed_tables(pair) -> set[str]:
    """Tables with a primary key: updated row by row (the others are replaced whole)."""
    return set(
        pair.master_sql(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND i.indisprimary"
        ).split()
    )


def multiset_minus(rows: list[str], other: list[str]) -> list[str]:
    """``rows`` less one occurrence of each of ``other``'s."""
    left = Counter(rows)
    left.subtract(Counter(other))
    return list(left.elements())


def test_awkward_values_arrive_byte_for_byte(pair):
    pair.plugin().replicate(pair.peer)

    assert pair.slave_row("SELECT label FROM endpoint_sip WHERE name = 'webrtc_acme'") == (NASTY,)
    cycle = pair.slave_sql(
        "SELECT t.slug, e.name FROM tenant t JOIN endpoint_sip e ON e.uuid = t.global_sip_template_uuid"
    )
    assert cycle == "acme|global_acme\n"
    options = pair.slave_sql(
        "SELECT options[4] IS NULL, array_length(options, 1) FROM voicemail WHERE mailbox = '1000'"
    )
    assert options == "t|5\n"
    config = pair.slave_sql("SELECT configuration->'nested'->'list'->>3 FROM external_app WHERE name = 'app-json'")
    assert config == "é\t\n"
    assert pair.slave_sql("SELECT last_value, is_called FROM context_id_seq") == "4242|f\n"
