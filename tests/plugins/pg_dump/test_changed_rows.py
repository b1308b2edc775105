"""``write_mode: changed_rows``: only the rows that differ are written on the slave, and the result is exact."""

from __future__ import annotations

import pytest

from wazo_ha_core import PreflightError

from .conftest import REPLICATION_ROLE, content


@pytest.fixture
def copied(pair):
    """A pair right after a good copy, with the plugin (and its state) that made it."""
    plugin = pair.plugin(pair.store())
    assert plugin.replicate(pair.peer).outcome == "copied"
    return plugin


def row_versions(pair, table: str) -> dict[str, str]:
    """``{id: xmin}`` of the slave's rows: a rewritten row gets a new xmin."""
    lines = pair.slave_sql(f"SELECT id, xmin FROM {table}").split()
    return dict(line.split("|") for line in lines)


def test_only_the_changed_rows_are_rewritten(pair, copied):
    before = row_versions(pair, "userfeatures")
    assert pair.slave_sql("SELECT count(*) FROM userfeatures WHERE email IS NULL").strip() != "0"
    pair.master_sql(
        "UPDATE userfeatures SET firstname = 'Zoë' WHERE id = 100003;"  # 100003 has a NULL email
        "DELETE FROM user_line WHERE user_id = 100004; DELETE FROM userfeatures WHERE id = 100004;"
        "INSERT INTO userfeatures (id, uuid, firstname, lastname, tenant_uuid, func_key_private_template_id, "
        "description) SELECT 100999, md5('new'), 'New', 'User', tenant_uuid, 100004, '' "
        "FROM userfeatures WHERE id = 100001"
    )

    result = copied.replicate(pair.peer)

    assert result.outcome == "copied"
    after = row_versions(pair, "userfeatures")
    assert set(after) == set(before) - {"100004"} | {"100999"}
    rewritten = sorted(row for row in after if after[row] != before.get(row))
    assert rewritten == ["100003", "100999"], "unchanged rows (NULLs included) must keep their row version"
    assert pair.slave_sql("SELECT firstname FROM userfeatures WHERE id = 100003").strip() == "Zoë"
    assert result.figures["written_tables"] == 2  # userfeatures, user_line
    assert result.figures["rows"] == 2 and result.figures["deleted"] == 3
    assert content(pair.slave)["userfeatures"] == content(pair.master)["userfeatures"]


KEYLESS = """
CREATE TABLE public.keyless (label text, amount integer);
ALTER TABLE public.keyless OWNER TO {owner};
INSERT INTO public.keyless VALUES {rows};
"""
WITH_IDENTITY = """
CREATE TABLE public.numbered (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, label text);
ALTER TABLE public.numbered OWNER TO {owner};
INSERT INTO public.numbered (id, label) OVERRIDING SYSTEM VALUE VALUES {rows};
"""


def test_a_table_without_primary_key_keeps_its_duplicates_exactly(pair):
    # Same distinct rows on both sides, different multiplicities: a set comparison would see no change.
    pair.master_sql(KEYLESS.format(owner="postgres", rows="('a', 1), ('a', 1), ('a', 1), ('b', NULL)"))
    pair.slave_sql(KEYLESS.format(owner="asterisk", rows="('a', 1), ('b', NULL), ('b', NULL)"))

    result = pair.plugin().replicate(pair.peer)

    assert result.outcome == "copied"
    assert content(pair.slave)["keyless"] == content(pair.master)["keyless"] == ["(a,1)", "(a,1)", "(a,1)", "(b,)"]


def test_an_identity_column_generated_always_is_copied_as_is(pair):
    pair.master_sql(WITH_IDENTITY.format(owner="postgres", rows="(7, 'seven'), (8, 'eight')"))
    pair.slave_sql(WITH_IDENTITY.format(owner="asterisk", rows="(7, 'old seven'), (9, 'nine')"))

    assert pair.plugin().replicate(pair.peer).outcome == "copied"
    assert pair.slave_sql("SELECT id, label FROM numbered ORDER BY id") == "7|seven\n8|eight\n"


def test_a_slave_whose_every_row_differs_ends_equal(pair):
    # The slave holds another site's users: every one of their rows is replaced.
    pair.slave_sql("UPDATE userfeatures SET firstname = firstname || ' (old)', callerid = NULL")

    result = pair.plugin().replicate(pair.peer)

    assert result.outcome == "copied"
    assert content(pair.slave)["userfeatures"] == content(pair.master)["userfeatures"]


def test_no_temporary_tables_allowed_is_refused_before_anything_is_written(pair):
    pair.slave_sql(f'REVOKE TEMPORARY ON DATABASE asterisk FROM PUBLIC, "{REPLICATION_ROLE}"')
    before = content(pair.slave)

    with pytest.raises(PreflightError, match="may not create temporary tables") as failure:
        pair.plugin().replicate(pair.peer)

    assert f'GRANT TEMPORARY ON DATABASE <configuration database> TO "{REPLICATION_ROLE}"' in str(failure.value)
    assert content(pair.slave) == before
    # truncate mode does not stage, so it does not need the right
    assert pair.plugin(write_mode="truncate").replicate(pair.peer).outcome == "copied"
