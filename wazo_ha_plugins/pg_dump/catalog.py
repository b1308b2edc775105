"""What is replicated: the tables and sequences of schema ``public``, minus the exclusions.

Read from the master inside the run's snapshot; the slave's catalog is
checked against it before anything is written there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg2 import sql

from wazo_ha_core import PreflightError

SCHEMA = "public"

#: Tables today's Wazo replication leaves out (WAZO-FACTS), plus ``infos``: the
#: slave keeps its own install UUID and version. Names absent from a schema are fine.
DEFAULT_EXCLUDED_TABLES = (
    "call_log",
    "call_log_participant",
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
    "monitoring",
    "netiface",
    "resolvconf",
    "infos",
)

#: Types whose hash function agrees with their text form (equal text <=> equal hash input):
#: the checksum hashes these values directly, every other type through its text.
#: Enums are not here: their hash is of the label's OID, which differs between databases.
NATIVELY_HASHED = (
    "smallint",
    "integer",
    "bigint",
    "text",
    "character varying",
    "boolean",
    "uuid",
    "bytea",
    "date",
    "timestamp without time zone",
    "timestamp with time zone",
)

# Per table: the copyable columns, which of them hash natively, and whether
# binary COPY is portable between two databases (it is not for composites and
# arrays of user-defined types, whose binary form carries type OIDs).
_TABLES = """
SELECT c.relname,
       array_agg(a.attname::text ORDER BY a.attnum),
       array_agg(a.atttypid = ANY(%s::regtype[]) ORDER BY a.attnum),
       bool_and(t.typtype NOT IN ('c', 'r', 'm') AND NOT (t.typelem <> 0 AND t.typlen = -1 AND t.typelem >= 16384)),
       (SELECT coalesce(array_agg(k.attname::text ORDER BY p.position), '{}')
          FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS p(attnum, position)
          JOIN pg_attribute k ON k.attrelid = c.oid AND k.attnum = p.attnum
         WHERE i.indrelid = c.oid AND i.indisprimary),
       (SELECT coalesce(array_agg(format_type(k.atttypid, k.atttypmod) ORDER BY p.position), '{}')
          FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS p(attnum, position)
          JOIN pg_attribute k ON k.attrelid = c.oid AND k.attnum = p.attnum
         WHERE i.indrelid = c.oid AND i.indisprimary)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
JOIN pg_type t ON t.oid = a.atttypid
WHERE n.nspname = %s AND c.relkind = 'r'
GROUP BY c.oid, c.relname
ORDER BY c.relname
"""
_NATIVE_TYPES = [*NATIVELY_HASHED, *(f"{name}[]" for name in NATIVELY_HASHED)]

# A sequence belongs to a table when it is OWNED BY one of its columns (serial,
# identity): it is excluded with that table.
_SEQUENCES = """
SELECT s.relname, min(t.relname)
FROM pg_class s
JOIN pg_namespace n ON n.oid = s.relnamespace
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class t ON t.oid = d.refobjid
WHERE n.nspname = %s AND s.relkind = 'S'
GROUP BY s.relname
ORDER BY s.relname
"""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    native_hash: tuple[bool, ...] = ()  # per column: hashed as is (else through its text)
    binary: bool = False  # binary COPY is portable for every column
    key: tuple[str, ...] = ()  # the primary key's columns, in the key's order; () without one
    key_types: tuple[str, ...] = ()  # their SQL types (format_type), to rebuild a key from its text

    @property
    def has_primary_key(self) -> bool:
        """No two rows alike: a set comparison finds every difference, and a row is found by its key."""
        return bool(self.key)

    @property
    def hashed_row(self) -> sql.Composable:
        """``ROW(…)`` of the columns as the checksum hashes them."""
        return self.hashed_row_of(None)

    def hashed_row_of(self, alias: str | None) -> sql.Composable:
        """:attr:`hashed_row` with each column qualified by ``alias`` (a table alias of the query)."""
        native = self.native_hash or (False,) * len(self.columns)
        return sql.SQL("ROW({})").format(
            sql.SQL(", ").join(
                column if plain else sql.SQL("{}::text").format(column)
                for column, plain in zip(self._qualified(alias), native, strict=True)
            )
        )

    def key_of(self, alias: str | None = None) -> sql.Composable:
        """The primary key's column list, qualified by ``alias`` if given."""
        return sql.SQL(", ").join(
            sql.Identifier(column) if alias is None else sql.Identifier(alias, column) for column in self.key
        )

    def columns_of(self, alias: str) -> sql.Composable:
        """The column list qualified by ``alias``."""
        return sql.SQL(", ").join(self._qualified(alias))

    def _qualified(self, alias: str | None) -> list[sql.Identifier]:
        return [sql.Identifier(column) if alias is None else sql.Identifier(alias, column) for column in self.columns]

    @property
    def ident(self) -> sql.Composable:
        return sql.Identifier(SCHEMA, self.name)

    @property
    def column_list(self) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(column) for column in self.columns)


@dataclass
class Catalog:
    tables: list[Table]
    sequences: list[str]
    excluded: list[str] = field(default_factory=list)  # excluded names that exist, for the report


def excluded_names(add: list[str], remove: list[str]) -> set[str]:
    return (set(DEFAULT_EXCLUDED_TABLES) | set(add)) - set(remove)


def read_catalog(cursor, excluded: set[str]) -> Catalog:
    """The replicated tables (with their copyable columns) and sequences of the master."""
    cursor.execute(_TABLES, (_NATIVE_TYPES, SCHEMA))
    all_tables = [
        Table(name, tuple(columns), tuple(native), binary, tuple(key), tuple(key_types))
        for name, columns, native, binary, key, key_types in cursor.fetchall()
    ]
    cursor.execute(_SEQUENCES, (SCHEMA,))
    all_sequences = cursor.fetchall()
    tables = [table for table in all_tables if table.name not in excluded]
    sequences = [name for name, owner in all_sequences if name not in excluded and owner not in excluded]
    present = sorted(
        {table.name for table in all_tables if table.name in excluded}
        | {name for name, owner in all_sequences if name in excluded or owner in excluded}
    )
    return Catalog(tables, sequences, present)


@dataclass
class SlaveCatalog:
    tables: dict[str, set[str]]  # table → its columns
    sequences: set[str]


def read_slave_catalog(cursor) -> SlaveCatalog:
    """The slave's tables (with their columns) and sequences, for :func:`check_slave_catalog`."""
    cursor.execute(_TABLES, (_NATIVE_TYPES, SCHEMA))
    tables = {name: set(columns) for name, columns, *_ in cursor.fetchall()}
    cursor.execute(_SEQUENCES, (SCHEMA,))
    return SlaveCatalog(tables, {name for name, _ in cursor.fetchall()})


def check_slave_catalog(slave: SlaveCatalog, master: Catalog) -> None:
    """Every replicated table, column and sequence of the master must exist on the slave."""
    slave_tables, slave_sequences = slave.tables, slave.sequences
    missing_tables = [table.name for table in master.tables if table.name not in slave_tables]
    if missing_tables:
        raise PreflightError(
            f"table(s) present on the master are missing on the slave: {', '.join(missing_tables)}; "
            "both nodes must run the same Wazo version"
        )
    missing_columns = [
        f"{table.name}.{column}"
        for table in master.tables
        for column in table.columns
        if column not in slave_tables[table.name]
    ]
    if missing_columns:
        raise PreflightError(f"column(s) present on the master are missing on the slave: {', '.join(missing_columns)}")
    missing_sequences = [name for name in master.sequences if name not in slave_sequences]
    if missing_sequences:
        raise PreflightError(f"sequence(s) missing on the slave: {', '.join(missing_sequences)}")


def schema_version(cursor, role: str, user: str | None = None) -> str:
    """The configuration database's alembic revision(s), e.g. ``1e0ff683a94e``."""
    cursor.execute(
        "SELECT to_regclass('public.alembic_version') IS NOT NULL, "
        "has_table_privilege(to_regclass('public.alembic_version'), 'SELECT')"
    )
    exists, readable = cursor.fetchone()
    if not exists:
        raise PreflightError(f"the {role}'s configuration database has no public.alembic_version table")
    if not readable:
        who = f"user {user!r}" if user else "the user"
        raise PreflightError(
            f"on the {role}, {who} may not read public.alembic_version; grant it the owner role of the "
            "configuration tables, e.g. GRANT asterisk TO <user> (setting slave_db.grant_roles)"
        )
    cursor.execute("SELECT version_num FROM public.alembic_version ORDER BY version_num")
    return ",".join(row[0] for row in cursor.fetchall()) or "(empty)"


def database_encoding(cursor) -> str:
    cursor.execute("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()")
    return cursor.fetchone()[0]


_TABLE_PRIVILEGES = """
SELECT c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind = 'r'
  AND NOT (has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT')
           AND has_table_privilege(c.oid, 'DELETE') AND has_table_privilege(c.oid, 'TRUNCATE'))
ORDER BY 1
"""
# ALTER SEQUENCE … RESTART (transactional, unlike setval) needs the sequence's owner's rights.
_SEQUENCE_OWNERS = """
SELECT c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind = 'S'
  AND NOT pg_has_role(current_user, c.relowner, 'USAGE')
ORDER BY 1
"""


def check_slave_privileges(cursor, master: Catalog, user: str, *, staging: bool = False) -> None:
    """The slave user may empty and load every replicated table and reset every sequence.

    A non-superuser replication role gets these rights by membership of the
    tables' owner (setting ``slave_db.grant_roles``, ``asterisk`` on Wazo).
    ``staging``: it must also be allowed temporary tables (PostgreSQL grants
    that to everyone unless an administrator revoked it).
    """
    if staging:
        cursor.execute("SELECT has_database_privilege(current_database(), 'TEMPORARY')")
        if not cursor.fetchone()[0]:
            raise PreflightError(
                f"slave user {user!r} may not create temporary tables, which write_mode 'changed_rows' "
                f'stages the master\'s rows in: GRANT TEMPORARY ON DATABASE <configuration database> TO "{user}"'
            )
    cursor.execute(_TABLE_PRIVILEGES, (SCHEMA, [table.name for table in master.tables]))
    tables = [row[0] for row in cursor.fetchall()]
    cursor.execute(_SEQUENCE_OWNERS, (SCHEMA, list(master.sequences)))
    sequences = [row[0] for row in cursor.fetchall()]
    if tables or sequences:
        names = tables + [f"sequence {name}" for name in sequences]
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise PreflightError(
            f"slave user {user!r} may not replace the data of {shown}: it needs SELECT, INSERT, DELETE and "
            f"TRUNCATE on the tables and the sequences' owner rights; grant it the owner role, e.g. "
            f'GRANT asterisk TO "{user}" (setting slave_db.grant_roles)'
        )
