"""The plugin as confd loads it: the entry point, the routes, and the refusals (only logged by confd)."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import flask_restful

from wazo_ha_confd.plugin import Plugin


def test_entry_point_is_installed_and_loaded_by_name(make_node, start_confd):
    (entry_point,) = [ep for ep in entry_points(group="wazo_confd.plugins") if ep.name == "wazo_ha"]
    assert entry_point.load() is Plugin

    confd = start_confd(make_node())

    assert confd.manager.names() == ["wazo_ha"]
    assert {"/1.1/ha", "/1.1/ha/status"} <= confd.rules()


def test_refuses_to_serve_without_acl_checks(make_node, start_confd, caplog):
    """Outside confd (its auth module not importable) and with no authorizer given: no /ha at all."""
    caplog.set_level(logging.ERROR)

    confd = start_confd(make_node(), with_authorizer=False)

    assert "/1.1/ha" not in confd.rules()
    assert "refusing to serve /ha without ACL checks" in caplog.text
    assert confd.request("GET", "/1.1/ha")[0] == 404


def test_refuses_when_confds_own_ha_plugin_serves_ha(make_node, start_confd, caplog):
    caplog.set_level(logging.ERROR)

    class ConfdOwnHAResource(flask_restful.Resource):
        def get(self):
            return {"node_type": "disabled", "remote_address": ""}

    confd = start_confd(make_node(), before_load=lambda api: api.add_resource(ConfdOwnHAResource, "/ha"))

    assert "/1.1/ha/status" not in confd.rules()
    assert "set enabled_plugins: {ha: false, wazo_ha: true}" in caplog.text


def test_broken_library_settings_answer_the_librarys_message_until_fixed(make_node, start_confd):
    node = make_node()
    good = node.config_file.read_text()
    node.config_file.write_text(good + "timeouts: {command: -1}\n")
    confd = start_confd(node)

    status, answer = confd.request("GET", "/1.1/ha")

    assert status == 500
    assert len(answer) == 1 and "timeouts.command" in answer[0]
    node.config_file.write_text(good)
    assert confd.request("GET", "/1.1/ha") == (200, {"node_type": "disabled", "remote_address": ""})
