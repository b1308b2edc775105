"""Per-bucket comparison before the key comparison (keyed.py): the test tables are made bucketed (a few rows
per bucket), and each test checks that the run compared only the differing buckets, found exactly the
differing keys, needed no rewrite after verification, and left the slave equal to the master."""

from __future__ import annotations

import pytest

from tests.rig.wazo_data import NASTY, literal
from wazo_ha_plugins.pg_dump import keyed

from .conftest import content, forget_last_copy_record
from .test_by_key import COMPOSITE, FK_JOINED_CHANGES


@pytest.fixture(autouse=True)
def small_buckets(monkeypatch):
    monkeypatch.setattr(keyed, "MIN_BUCKETED_ROWS", 8)
    monkeypatch.setattr(keyed, "ROWS_PER_BUCKET", 4)


@pytest.fixture
def copied(pair):
    plugin = pair.plugin(pair.store())
    assert plugin.replicate(pair.peer).outcome == "copied"
    forget_last_copy_record(plugin)  # buckets are a step of the comparison by hash
    return plugin


def bucketed_run(pair, plugin, tables: dict[str, int]) -> dict:
    """Replicate; ``tables``: {table: differing keys}; every one compared by key within differing buckets."""
    result = plugin.replicate(pair.peer)
    figures = result.figures
    assert result.outcome == "copied"
    assert figures["methods"] == dict.fromkeys(tables, "keys")
    assert figures["keys"] == sum(tables.values())
    assert set(figures["buckets"]) == set(tables)
    for table, keys in tables.items():
        # a bucket holds at least one differing key; the table has several times more buckets than that
        assert 1 <= figures["buckets"][table] <= keys, table
    assert figures["rewritten_after_verification"] == []
    slave, master = content(pair.slave), content(pair.master)
    for table in tables:
        assert slave[table] == master[table], table
    return figures


def test_a_single_changed_row_is_found_in_its_bucket(pair, copied):
    assert keyed.bucket_count(40) >= 8
    pair.master_sql("UPDATE userfeatures SET firstname = 'Changed' WHERE id = 100003")

    figures = bucketed_run(pair, copied, {"userfeatures": 1})

    assert figures["buckets"]["userfeatures"] == 1 and figures["rows"] == 1 and figures["deleted"] == 1


def test_a_swapped_pair_of_rows_is_found(pair, copied):
    pair.master_sql(
        "UPDATE userfeatures AS u SET firstname = o.firstname, lastname = o.lastname FROM userfeatures AS o "
        "WHERE (u.id, o.id) IN ((100002, 100003), (100003, 100002))"
    )

    assert pair.master_sql("SELECT firstname FROM userfeatures WHERE id = 100002").strip() == "Prénom 3"
    bucketed_run(pair, copied, {"userfeatures": 2})

    assert pair.slave_sql("SELECT firstname FROM userfeatures WHERE id = 100002").strip() == "Prénom 3"


def test_rows_with_tabs_newlines_backslashes_and_non_ascii_across_joined_tables(pair, copied):
    pair.master_sql(FK_JOINED_CHANGES)

    bucketed_run(
        pair, copied, {"func_key_template": 2, "userfeatures": 4, "user_line": 2, "endpoint_sip_section_option": 4}
    )


def test_a_composite_key_with_awkward_text_in_the_key(pair):
    pair.master_sql(
        COMPOSITE.format(owner="postgres")
        + "INSERT INTO zoned SELECT CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END, i, 'label ' || i, "
        + f"{literal(NASTY)} || i FROM generate_series(1, 40) AS i;"
        + f"INSERT INTO zoned VALUES ({literal(NASTY)}, 1, {literal(NASTY)}, NULL)"
    )
    pair.slave_sql(COMPOSITE.format(owner="asterisk"))
    plugin = pair.plugin(pair.store())
    assert plugin.replicate(pair.peer).outcome == "copied"
    forget_last_copy_record(plugin)
    pair.master_sql(
        f"UPDATE zoned SET label = label || E'\\t\\\\2\\n' WHERE zone = {literal(NASTY)};"
        "UPDATE zoned SET n = 99 WHERE zone = 'even' AND n = 2;"  # the key changed in place
    )

    bucketed_run(pair, plugin, {"zoned": 3})


def test_bucket_sums_that_hide_a_change_are_caught_by_the_verification(pair, copied, monkeypatch):
    # Test hook: every row hashes alike, so every bucket's sum and count stay equal after an edit; the
    # pairs are then compared in full (equal too), and the verification's own checksum must catch it.
    monkeypatch.setattr(keyed, "ROW_HASH", "(length({row}::text) * 0)::bigint")
    pair.master_sql("UPDATE userfeatures SET firstname = 'Hidden' WHERE id = 100005")

    result = copied.replicate(pair.peer)

    assert result.figures["rewritten_after_verification"] == ["userfeatures"]
    assert pair.slave_sql("SELECT firstname FROM userfeatures WHERE id = 100005").strip() == "Hidden"
    assert content(pair.slave)["userfeatures"] == content(pair.master)["userfeatures"]
