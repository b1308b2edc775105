"""Message-waiting after a copy-back: which mailboxes changed (from the merge plans), the names refused before
they reach a request, the core's refresh over the service managers, and ``wazo_services`` talking to wazo-amid.

wazo-amid and Asterisk cannot run here: :mod:`tests.rig.amid_standin` stands in for them, following wazo-amid's
request shape (``POST /1.0/action/VoicemailRefresh``, ``X-Auth-Token``, the action's headers as a JSON object)
and its answer (a JSON list of AMI messages).
"""

from __future__ import annotations

import logging
import socket

import pytest

from tests.rig.amid_standin import AmidStandin
from tests.unit.test_voicemail_merge import greeting, message
from wazo_ha_core import OperationResult, PluginError, UnsupportedOperation
from wazo_ha_core.copy_back.mwi import refresh
from wazo_ha_core.voicemail import parse_tree, plan_copy_back
from wazo_ha_core.voicemail.changed import from_plan, from_side_plan, refusal
from wazo_ha_core.voicemail.threeway import Base, merge

A, B, C, D, E = (f"default/100{n}" for n in range(1, 6))


def boxes(*parts):
    listing = {}
    for part in parts:
        listing.update(part)
    return listing


# --- the mailbox list from a plan ----------------------------------------------------------------


def test_additive_plan_lists_the_mailboxes_receiving_messages_and_no_other():
    master = boxes(message("INBOX", 0, "m", box=A), message("INBOX", 0, "same", box=B), greeting("busy", "1", box=C))
    slave = boxes(
        message("INBOX", 0, "new", box=A),  # clashes with the master's msg0000: renumbered into A
        message("INBOX", 0, "same", box=B),  # already on the master: B untouched
        greeting("busy", "2", box=C),  # a greeting changes no count
        message("Old", 0, "new-d", box=D),
    )
    plan = plan_copy_back(parse_tree(master), parse_tree(slave))
    assert from_plan(plan) == {("default", "1001"), ("default", "1004")}
    # Only the moves carried out count when the caller says which were.
    assert from_plan(plan, [("default/1004", "Old", 0)]) == {("default", "1004")}


def test_two_way_plan_lists_added_removed_moved_and_renumbered_mailboxes_only():
    base = boxes(
        message("INBOX", 0, "b0", box=B),
        message("INBOX", 0, "c0", box=C),
        message("INBOX", 0, "d0", box=D),
        message("INBOX", 0, "e0", box=E),
        greeting("unavail", "v1", box=E),
    )
    master = dict(base)
    slave = boxes(
        message("INBOX", 0, "a-new", box=A),  # A: new on the slave
        # B: deleted on the slave (owner's deletion)
        message("Old", 0, "c0", box=C),  # C: read on the slave, moved to Old
        message("INBOX", 0, "d0", box=D),  # D: untouched
        message("INBOX", 0, "e0", box=E),
        greeting("unavail", "v2", box=E),  # E: greeting only
    )
    merged = merge(parse_tree(master), parse_tree(slave), Base.of(parse_tree(base)))
    assert from_side_plan(merged.master) == {("default", "1001"), ("default", "1002"), ("default", "1003")}


def test_two_way_plan_counts_a_renumbering_on_the_master():
    # A gap on the master (msg0001 missing): the merge renumbers msg0002 -> msg0001, nothing else changes.
    master = boxes(message("INBOX", 0, "x", box=A), message("INBOX", 2, "y", box=A), message("INBOX", 0, "z", box=B))
    merged = merge(parse_tree(master), parse_tree(master), Base.of(parse_tree(master)))
    assert merged.master.figures("m")["m_renumbered"] == 1
    assert from_side_plan(merged.master) == {("default", "1001")}


@pytest.mark.parametrize(
    ("context", "mailbox"),
    [("default", "1001"), ("acme-internal", "1001"), ("tenant_1.x", "sip+33"), ("a", "B_2")],
)
def test_names_of_real_mailboxes_pass(context, mailbox):
    assert refusal(context, mailbox) is None


@pytest.mark.parametrize(
    ("context", "mailbox", "named"),
    [
        ("default", "10@01", "'10@01'"),  # mailbox@context: another mailbox
        ("default", "1001\r\nAction: Originate", "Action: Originate"),  # AMI header injection
        ("default", "", "''"),
        ("default", "-1001", "'-1001'"),
        ("def ault", "1001", "'def ault'"),
        ("default\n", "1001", "'default\\n'"),
        ("x" * 81, "1001", "xxxx"),
        ("default", "1" * 81, "1111"),
    ],
)
def test_hostile_names_are_refused_naming_the_value(context, mailbox, named):
    problem = refusal(context, mailbox)
    assert problem is not None and "refused" in problem and named in problem


# --- the core's refresh over the service managers -------------------------------------------------


class Manager:
    def __init__(self, name, answer=None, raises=None):
        self.name, self.answer, self.raises, self.calls = name, answer, raises, []

    def refresh_mailboxes(self, mailboxes):
        self.calls.append(list(mailboxes))
        if self.raises is not None:
            raise self.raises
        return self.answer(mailboxes)


def all_ok(mailboxes):
    return OperationResult("synced", figures={"refreshed": len(mailboxes), "failed": {}})


def test_refresh_asks_the_first_manager_that_can_and_never_sends_a_refused_name():
    relay = Manager("berofos", raises=UnsupportedOperation("no"))
    services = Manager("wazo_services", answer=all_ok)
    done = refresh([relay, services], {("default", "1001"), ("default", "10@02"), ("acme", "7")})
    assert services.calls == [[("acme", "7"), ("default", "1001")]]
    assert done.figures() == {"mwi_refreshed": 2, "mwi_failed": 1}
    assert len(done.notices) == 1 and "'10@02'" in done.notices[0]


def test_a_manager_failure_is_a_notice_per_mailbox_not_an_exception():
    services = Manager("wazo_services", raises=PluginError("wazo-amid unreachable"))
    done = refresh([services], {("default", "1001"), ("default", "1002")})
    assert done.figures() == {"mwi_refreshed": 0, "mwi_failed": 2}
    assert [n.split(" not refreshed")[0] for n in done.notices] == [
        "message-waiting of voicemail default/1001",
        "message-waiting of voicemail default/1002",
    ]
    assert all("wazo-amid unreachable" in n for n in done.notices)


def test_without_a_manager_that_can_every_mailbox_is_reported():
    done = refresh([Manager("berofos", raises=UnsupportedOperation("no"))], {("default", "1001")})
    assert done.figures() == {"mwi_refreshed": 0, "mwi_failed": 1}
    assert "no service manager can" in done.notices[0] and "default/1001" in done.notices[0]


# --- wazo_services and wazo-amid (the stand-in) -------------------------------------------------------

TOKEN = "5c1f0a4e-3d2b-4c8e-9f7a-0b1c2d3e4f5a"


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "amid-token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


def services(make_plugin, token_file, url, **extra):
    from wazo_ha_plugins.wazo_services import WazoServices

    config = {"status_commands": [], "amid_url": url, "amid_token_file": str(token_file), "amid_timeout": 2, **extra}
    return make_plugin(WazoServices, "wazo_services", config)


@pytest.fixture
def make_plugin(tmp_path):
    from wazo_ha_core.extensions import PluginContext
    from wazo_ha_core.settings import Settings

    class State(dict):
        def set(self, key, value):
            self[key] = value

        def delete(self, key):
            self.pop(key, None)

    def build(cls, name, config):
        settings = Settings.from_tree({})
        context = PluginContext(name, "wazo_ha.service_managers", config, settings, State(), logging.getLogger(name))
        return cls(context)

    return build


def test_wazo_services_sends_one_voicemail_refresh_per_mailbox_as_wazo_amid_expects(
    make_plugin, token_file, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    with AmidStandin(TOKEN, tmp_path / "amid.log", error_for={"default/1002"}) as amid:
        plugin = services(make_plugin, token_file, amid.url)
        result = plugin.refresh_mailboxes([("default", "1001"), ("default", "1002"), ("acme", "7")])
        received = amid.requests()
    assert [(r["method"], r["path"], r["authorised"], r["body"]) for r in received] == [
        ("POST", "/1.0/action/VoicemailRefresh", True, {"Context": "default", "Mailbox": "1001"}),
        ("POST", "/1.0/action/VoicemailRefresh", True, {"Context": "default", "Mailbox": "1002"}),
        ("POST", "/1.0/action/VoicemailRefresh", True, {"Context": "acme", "Mailbox": "7"}),
    ]
    assert result.figures["refreshed"] == 2
    assert list(result.figures["failed"]) == ["default/1002"]
    assert "Asterisk answered Error: Mailbox not found" in result.figures["failed"]["default/1002"]
    assert TOKEN not in caplog.text


def test_wazo_services_refuses_a_hostile_name_itself(make_plugin, token_file, tmp_path):
    with AmidStandin(TOKEN, tmp_path / "amid.log") as amid:
        plugin = services(make_plugin, token_file, amid.url)
        result = plugin.refresh_mailboxes([("default", "1001\r\nAction: Originate")])
        assert amid.requests() == []
    assert (
        result.figures["refreshed"] == 0 and "refused" in result.figures["failed"]["default/1001\r\nAction: Originate"]
    )


def test_a_refused_token_fails_each_mailbox_naming_the_cause_not_the_token(make_plugin, tmp_path):
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token")
    wrong.chmod(0o600)
    with AmidStandin(TOKEN, tmp_path / "amid.log") as amid:
        result = services(make_plugin, wrong, amid.url).refresh_mailboxes([("default", "1001")])
    reason = result.figures["failed"]["default/1001"]
    assert "HTTP 401" in reason and "not-the-token" not in reason


def test_wazo_amid_down_fails_fast_without_trying_every_mailbox(make_plugin, token_file, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    plugin = services(make_plugin, token_file, f"http://127.0.0.1:{port}/1.0")
    result = plugin.refresh_mailboxes([("default", "1001"), ("default", "1002")])
    assert result.figures["refreshed"] == 0
    assert set(result.figures["failed"]) == {"default/1001", "default/1002"}
    assert all("unreachable" in reason for reason in result.figures["failed"].values())


def test_a_token_file_open_to_others_or_missing_is_refused(make_plugin, token_file, tmp_path):
    token_file.chmod(0o644)
    with pytest.raises(PluginError, match="open to others"):
        services(make_plugin, token_file, "http://127.0.0.1:9/1.0").refresh_mailboxes([("default", "1001")])
    with pytest.raises(PluginError, match="cannot read the wazo-amid token file"):
        services(make_plugin, tmp_path / "absent", "http://127.0.0.1:9/1.0").refresh_mailboxes([("default", "1")])


def test_amid_url_must_be_http(make_plugin, token_file):
    with pytest.raises(PluginError, match="amid_url must be an http"):
        services(make_plugin, token_file, "file:///etc/passwd")
