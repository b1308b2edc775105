"""Generated rows for Wazo's real configuration schema (../shared/fixtures).

SQL text to load after ``asterisk-schema.sql`` and ``asterisk-populate-data.sql``:
the awkward cases replication must carry (the ``tenant`` ↔ ``endpoint_sip``
cycle, unicode, tabs/newlines/backslashes, NULLs, arrays, JSON, sequences),
a site of N users with lines, extensions and SIP endpoints, and bulk rows for
the excluded tables (``cel``, ``queue_log``). Used by the plugin tests and
the benchmark.
"""

from __future__ import annotations

TENANT = "7f1f4a6e-5c1b-4d59-9e43-aa0000000001"
GLOBAL_TEMPLATE = "7f1f4a6e-5c1b-4d59-9e43-bb0000000001"
WEBRTC_TEMPLATE = "7f1f4a6e-5c1b-4d59-9e43-bb0000000002"
NASTY = "tab\there, newline\nthere, backslash \\ and \\N, quote ' and \", ünïcödé 日本語 🎉, \r\n"


def literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings on)."""
    return "'" + text.replace("'", "''") + "'"


def tenant_sql() -> str:
    """One tenant with its global SIP templates: the foreign-key cycle, both ways."""
    nasty = literal(NASTY)
    return f"""
INSERT INTO tenant (uuid, slug, country, record_start_announcement, record_stop_announcement)
VALUES ('{TENANT}', 'acme', 'FR', {nasty}, NULL);
INSERT INTO endpoint_sip (uuid, label, name, tenant_uuid, template) VALUES
  ('{GLOBAL_TEMPLATE}', 'global', 'global_acme', '{TENANT}', true),
  ('{WEBRTC_TEMPLATE}', {nasty}, 'webrtc_acme', '{TENANT}', true);
UPDATE tenant SET global_sip_template_uuid = '{GLOBAL_TEMPLATE}', webrtc_sip_template_uuid = '{WEBRTC_TEMPLATE}',
  sip_templates_generated = true WHERE uuid = '{TENANT}';
INSERT INTO endpoint_sip_section (uuid, type, endpoint_sip_uuid) VALUES
  ('7f1f4a6e-5c1b-4d59-9e43-cc0000000001', 'aor', '{GLOBAL_TEMPLATE}');
INSERT INTO endpoint_sip_section_option (key, value, endpoint_sip_section_uuid) VALUES
  ('minimum_expiration', '60', '7f1f4a6e-5c1b-4d59-9e43-cc0000000001'),
  ('default_expiration', '120', '7f1f4a6e-5c1b-4d59-9e43-cc0000000001'),
  ('maximum_expiration', '3600', '7f1f4a6e-5c1b-4d59-9e43-cc0000000001'),
  ('odd value', {nasty}, '7f1f4a6e-5c1b-4d59-9e43-cc0000000001');
INSERT INTO context (tenant_uuid, name, displayname, contexttype, description)
VALUES ('{TENANT}', 'acme-internal', {nasty}, 'internal', NULL);
"""


def awkward_sql() -> str:
    """The tenant plus arrays, JSON, NULLs, doubles and sequences in odd states."""
    nasty = literal(NASTY)
    return (
        tenant_sql()
        + f"""
INSERT INTO external_app (name, tenant_uuid, label, configuration) VALUES
  ('app-json', '{TENANT}', {nasty}, '{{"nested": {{"list": [1, 2.50, null, "\\u00e9\\t"]}}, "emoji": "🎉"}}'),
  ('app-null', '{TENANT}', NULL, NULL);
INSERT INTO voicemail (context, mailbox, fullname, options) VALUES
  ('acme-internal', '1000', {nasty}, ARRAY['a,b', 'with "quote"', 'back\\slash', NULL, '{{braces}}']::varchar[]),
  ('acme-internal', '1001', '', '{{}}');
SELECT setval('context_id_seq', 4242, false);
SELECT setval('voicemail_uniqueid_seq', 777, true);
"""
    )


def users_sql(count: int, first: int = 1) -> str:
    """``count`` users, each with a SIP endpoint (3 sections, 8 options), a line and an extension."""
    last = first + count - 1
    return f"""
INSERT INTO func_key_template (id, tenant_uuid, name, private)
SELECT 100000 + i, '{TENANT}', NULL, true FROM generate_series({first}, {last}) AS i;
INSERT INTO userfeatures (id, uuid, firstname, lastname, email, tenant_uuid, func_key_private_template_id,
                          description, callerid)
SELECT 100000 + i, md5('user' || i), 'Prénom ' || i, E'Nom\\t' || i,
       CASE WHEN i % 3 = 0 THEN NULL ELSE 'user' || i || '@example.com' END,
       '{TENANT}', 100000 + i, '', '"Prénom ' || i || '" <' || (10000 + i) || '>'
FROM generate_series({first}, {last}) AS i;
INSERT INTO endpoint_sip (uuid, label, name, tenant_uuid, template)
SELECT md5('sip' || i)::uuid, 'line ' || i, 'sip' || i, '{TENANT}', false FROM generate_series({first}, {last}) AS i;
INSERT INTO endpoint_sip_section (uuid, type, endpoint_sip_uuid)
SELECT md5('section' || s || i)::uuid, s::endpoint_sip_section_type, md5('sip' || i)::uuid
FROM generate_series({first}, {last}) AS i, unnest(ARRAY['aor', 'auth', 'endpoint']) AS s;
INSERT INTO endpoint_sip_section_option (key, value, endpoint_sip_section_uuid)
SELECT o.key, o.value || i, md5('section' || o.section || i)::uuid
FROM generate_series({first}, {last}) AS i,
     (VALUES ('aor', 'max_contacts', ''), ('aor', 'remove_existing', 'yes'),
             ('auth', 'username', 'u'), ('auth', 'password', 'secret-'),
             ('endpoint', 'callerid', 'User '), ('endpoint', 'context', 'acme-internal'),
             ('endpoint', 'allow', '!all,ulaw,'), ('endpoint', 'set_var', 'WAZO_TENANT=acme;'))
       AS o(section, key, value);
INSERT INTO linefeatures (id, name, number, context, provisioningid, endpoint_sip_uuid, description)
SELECT 100000 + i, 'sip' || i, (10000 + i)::text, 'acme-internal', 100000 + i, md5('sip' || i)::uuid, NULL
FROM generate_series({first}, {last}) AS i;
INSERT INTO extensions (id, context, exten, type, typeval)
SELECT 100000 + i, 'acme-internal', (10000 + i)::text, 'user', '0' FROM generate_series({first}, {last}) AS i;
INSERT INTO user_line (user_id, line_id, main_user, main_line)
SELECT 100000 + i, 100000 + i, true, true FROM generate_series({first}, {last}) AS i;
INSERT INTO line_extension (line_id, extension_id, main_extension)
SELECT 100000 + i, 100000 + i, true FROM generate_series({first}, {last}) AS i;
SELECT setval('userfeatures_id_seq', 100000 + {last});
SELECT setval('linefeatures_id_seq', 100000 + {last});
SELECT setval('extensions_id_seq', 100000 + {last});
"""


def excluded_rows_sql(count: int) -> str:
    """``count`` rows split between ``cel`` and ``queue_log`` (excluded tables)."""
    half = count // 2
    return f"""
INSERT INTO cel (eventtype, eventtime, userdeftype, cid_name, cid_num, cid_ani, cid_rdnis, cid_dnid, exten, context,
                 channame, appname, appdata, amaflags, accountcode, peeraccount, uniqueid, linkedid, userfield, peer)
SELECT 'CHAN_START', now() - i * interval '1 second', '', 'Caller ' || i, (10000 + i % 20000)::text, '', '', '',
       's', 'acme-internal', 'PJSIP/sip' || (i % 20000) || '-0000', 'Dial', 'PJSIP/x', 3, '', '',
       '1700000000.' || i, '1700000000.' || i, '', ''
FROM generate_series(1, {half}) AS i;
INSERT INTO queue_log ("time", callid, queuename, agent, event, data1, data2, data3)
SELECT now() - i * interval '1 second', '1700000000.' || i, 'support', 'Agent/' || (i % 50), 'CONNECT', '1', '2', '3'
FROM generate_series(1, {count - half}) AS i;
"""
