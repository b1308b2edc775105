"""GET/PUT /1.1/ha and GET /1.1/ha/status over HTTP, as wazo-ui and API clients call them."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wazo_ha_core.cli.main import main as wazo_ha_main
from wazo_ha_core.config import validate_ha_body
from wazo_ha_core.errors import ValidationError

from .conftest import LOCAL_ADDRESSES

DISABLED = {"node_type": "disabled", "remote_address": ""}
JSON = "application/json"
INPUT_ERROR = re.compile(r"Input Error - [^:]+: \[.*\]", re.DOTALL)


def library_messages(body) -> list[str]:
    """The library's verdict on ``body``, rendered as confd renders marshmallow's errors."""
    with pytest.raises(ValidationError) as caught:
        validate_ha_body(body, LOCAL_ADDRESSES)
    return [f"Input Error - {field}: {[message]}" for field, message in caught.value.errors.items()]


def test_get_put_round_trip(make_node, start_confd):
    node = make_node()
    confd = start_confd(node)

    assert confd.request("GET", "/1.1/ha") == (200, DISABLED)

    assert confd.request("PUT", "/1.1/ha", {"node_type": "master", "remote_address": "10.0.0.2"}) == (204, None)
    assert confd.request("GET", "/1.1/ha") == (200, {"node_type": "master", "remote_address": "10.0.0.2"})
    # The rest of Wazo reads ha.conf: written by the library's edit steps, not by sysconfd.
    assert json.loads(node.ha_conf.read_text()) == {"node_type": "master", "remote_address": "10.0.0.2"}
    assert (node.root / "var/lib/wazo/is-primary").exists()

    # What GET returns for a disabled node can be PUT back as is (wazo-ui does).
    assert confd.request("PUT", "/1.1/ha", DISABLED) == (204, None)
    assert confd.request("GET", "/1.1/ha") == (200, DISABLED)
    assert not (node.root / "var/lib/wazo/is-primary").exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"remote_address": "10.0.0.2"},
        {"node_type": "primary", "remote_address": "10.0.0.2"},
        {"node_type": "master"},
        {"node_type": "master", "remote_address": None},
        {"node_type": "slave", "remote_address": "wazo-2.example.com"},
        {"node_type": "master", "remote_address": "10.0.0.1"},  # this node itself
        {"node_type": "master", "remote_address": "127.0.0.1"},
        {"node_type": "master", "remote_address": 42},
        {"node_type": "master", "remote_address": "10.0.0.2", "backup": True},
        [],
        "master",
        None,
    ],
    ids=repr,
)
def test_every_validation_error_in_confds_format(make_node, start_confd, body):
    node = make_node()
    confd = start_confd(node)

    status, answer = confd.request("PUT", "/1.1/ha", raw=json.dumps(body).encode())

    assert status == 400
    assert answer == library_messages(body)
    assert all(INPUT_ERROR.fullmatch(message) for message in answer), answer
    assert confd.request("GET", "/1.1/ha") == (200, DISABLED)
    assert not node.ha_conf.exists()
    assert confd.bus.published == []


def test_missing_field_reads_like_confds_own_answer(make_node, start_confd):
    confd = start_confd(make_node())

    status, answer = confd.request("PUT", "/1.1/ha", {"remote_address": "10.0.0.2"})

    assert status == 400
    assert len(answer) == 1 and answer[0].startswith("Input Error - node_type: ['")


@pytest.mark.parametrize(
    ("raw", "content_type", "message"),
    [
        (b"{not json", "application/json", "Input Error - body: not a valid JSON document"),
        (b"", "application/json", "Input Error - body: not a valid JSON document"),
        (b'{"node_type": "disabled"}', "text/plain", "Input Error - body: the request Content-Type must be " + JSON),
    ],
)
def test_unreadable_body(make_node, start_confd, raw, content_type, message):
    confd = start_confd(make_node())

    assert confd.request("PUT", "/1.1/ha", raw=raw, content_type=content_type) == (400, [message])
    assert confd.request("GET", "/1.1/ha") == (200, DISABLED)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3),
    max_leaves=6,
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "node_type": st.sampled_from(["disabled", "master", "slave", "", "MASTER"]) | json_values,
            "remote_address": st.sampled_from(["", "10.0.0.2", "10.0.0.1", "2001:db8::2", "::1", "host"]) | json_values,
        },
    ),
)


def test_any_body_is_applied_or_refused_with_the_librarys_messages(make_node, start_confd):
    """Property: a PUT either answers 204 and GET shows the library's normalised settings, or answers
    400 with exactly the library's messages in confd's format and changes nothing."""
    confd = start_confd(make_node())  # one node and server for every example: the state carries over

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(body=bodies)
    def put_any(body):
        before = confd.request("GET", "/1.1/ha")
        events_before = len(confd.bus.published)

        status, answer = confd.request("PUT", "/1.1/ha", raw=json.dumps(body).encode())

        try:
            expected = validate_ha_body(body, LOCAL_ADDRESSES)
        except ValidationError:
            assert (status, answer) == (400, library_messages(body))
            assert confd.request("GET", "/1.1/ha") == before
            assert len(confd.bus.published) == events_before
            return
        assert (status, answer) == (204, None)
        assert confd.request("GET", "/1.1/ha") == (200, expected.as_dict())
        # One event when the settings changed; none or one when they were equal (one when the
        # edit still had files to bring up to date, e.g. the very first PUT of a fresh node).
        changed = before[1] != expected.as_dict()
        assert events_before + changed <= len(confd.bus.published) <= events_before + 1

    put_any()


@pytest.mark.parametrize(
    ("method", "path", "acl"),
    [
        ("GET", "/1.1/ha", "confd.ha.read"),
        ("PUT", "/1.1/ha", "confd.ha.update"),
        ("GET", "/1.1/ha/status", "confd.ha.status.read"),
    ],
)
@pytest.mark.parametrize(
    ("token", "status"),
    [
        (None, 401),  # no X-Auth-Token header
        ("", 401),
        ("expired-or-made-up", 401),
        ("users-token", 403),  # valid, but without the ACL
        ("other-tenant-token", 401),  # every ACL, but not the master tenant
    ],
)
def test_refusals_as_confd_answers_them(make_node, start_confd, method, path, acl, token, status):
    node = make_node()
    confd = start_confd(node)
    body = {"node_type": "master", "remote_address": "10.0.0.2"} if method == "PUT" else None

    code, answer = confd.request(method, path, body, token=token)

    assert code == status
    assert isinstance(answer, list) and all(isinstance(message, str) for message in answer)
    assert token is None or token == "" or (token, acl) in confd.auth.checked
    assert confd.request("GET", "/1.1/ha") == (200, DISABLED)
    assert confd.bus.published == []


def test_each_operation_needs_its_own_acl(make_node, start_confd):
    confd = start_confd(make_node())

    assert confd.request("GET", "/1.1/ha", token="reader-token")[0] == 200
    assert confd.request("PUT", "/1.1/ha", DISABLED, token="reader-token")[0] == 403
    assert confd.request("GET", "/1.1/ha/status", token="reader-token")[0] == 403
    assert confd.request("PUT", "/1.1/ha", DISABLED, token="ha-only-token")[0] == 204
    assert confd.request("GET", "/1.1/ha/status", token="ha-only-token")[0] == 200


def test_ha_edited_published_once_per_effective_edit(make_node, start_confd):
    confd = start_confd(make_node())
    master = {"node_type": "master", "remote_address": "10.0.0.2"}

    assert confd.request("PUT", "/1.1/ha", master)[0] == 204
    assert confd.request("PUT", "/1.1/ha", master)[0] == 204  # nothing to change: no event
    assert confd.request("PUT", "/1.1/ha", {"node_type": "master"})[0] == 400
    assert confd.request("PUT", "/1.1/ha", master, token="reader-token")[0] == 403
    assert confd.bus.names() == ["ha_edited"]

    assert confd.request("PUT", "/1.1/ha", DISABLED)[0] == 204
    assert confd.bus.names() == ["ha_edited", "ha_edited"]
    event = confd.bus.published[0]
    # wazo-bus's contract for HAEditedEvent: a confd service event, empty payload.
    assert (event.name, event.routing_key, event.marshal()) == ("ha_edited", "config.ha.edited", {})
    assert event.headers["name"] == "ha_edited"
    assert event.required_access == "event.ha_edited"


def test_status_is_wazo_ha_status_json(make_node, start_confd, capsys):
    node = make_node()
    confd = start_confd(node)
    assert confd.request("PUT", "/1.1/ha", {"node_type": "master", "remote_address": "10.0.0.2"})[0] == 204

    code, status = confd.request("GET", "/1.1/ha/status")

    assert code == 200
    assert wazo_ha_main(["--config", str(node.config_file), "status", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert status == cli
    assert (status["role"], status["peer"]) == ("master", "10.0.0.2")
    assert set(status["last"]) == {
        "replication", "sync", "copy-back", "failover", "failback", "switchover", "switchback"
    }  # fmt: skip
    assert status["coordination"] == {"coordinator": "none"}
    assert status["master"]["state"] == "this node"
    assert status["events"][0]["kind"] == "edit"
    assert status["events"][0]["figures"]["after"] == {"node_type": "master", "remote_address": "10.0.0.2"}
