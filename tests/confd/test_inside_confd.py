"""Inside wazo-confd the plugin uses confd's own auth pieces, imported only when confd loads it.

wazo-confd is not on PyPI: a stand-in package ``wazo_confd`` (written to a temporary directory
and put on ``sys.path``) provides what the plugin imports, behaving as confd's own pieces do
(wazo_ha_confd/auth.py): ``required_acl(pattern)`` and ``required_master_tenant()`` only mark the
method; ``ConfdResource`` verifies the token (the ACL, then the tenant) before calling it, with
the same stand-in wazo-auth as the other tests.
"""

from __future__ import annotations

import sys
import textwrap

import pytest

from .conftest import MASTER_TENANT, TOKENS, StandInWazoAuth

STANDIN_AUTH = '''
"""Stand-in for wazo_confd.auth: decorators that mark the method, as confd's do."""


def required_acl(pattern):
    def mark(method):
        method.acl = pattern
        return method

    return mark


def required_master_tenant():
    def mark(method):
        method.tenant_uuid = "master"
        return method

    return mark
'''

STANDIN_RESTFUL = '''
"""Stand-in for wazo_confd.helpers.restful.ConfdResource: verifies what the decorators marked."""

from functools import wraps

import flask_restful
from flask import request

AUTH = None  # set by the test: (token checker, master tenant uuid)


def verify(method):
    @wraps(method)
    def verified(*args, **kwargs):
        checker, master = AUTH
        token = request.headers.get("X-Auth-Token", "")
        answer = checker.check(token, method.acl)
        if answer == 404:
            return ["Unauthorized"], 401
        if answer == 403:
            return ["Forbidden"], 403
        if getattr(method, "tenant_uuid", None) == "master" and checker.tenant_uuid(token) != master:
            return ["Unauthorized"], 401
        return method(*args, **kwargs)

    return verified


class ConfdResource(flask_restful.Resource):
    method_decorators = [verify]
'''


@pytest.fixture
def standin_confd(tmp_path, monkeypatch):
    package = tmp_path / "standin" / "wazo_confd"
    (package / "helpers").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "helpers" / "__init__.py").write_text("")
    (package / "auth.py").write_text(textwrap.dedent(STANDIN_AUTH))
    (package / "helpers" / "restful.py").write_text(textwrap.dedent(STANDIN_RESTFUL))
    monkeypatch.syspath_prepend(str(tmp_path / "standin"))
    import wazo_confd.helpers.restful as restful

    auth = StandInWazoAuth(TOKENS)
    restful.AUTH = (auth, MASTER_TENANT)
    yield auth
    for name in [name for name in sys.modules if name == "wazo_confd" or name.startswith("wazo_confd.")]:
        del sys.modules[name]


def test_plugin_uses_confds_decorators_and_resource_base(make_node, start_confd, standin_confd):
    confd = start_confd(make_node(), with_authorizer=False)  # nothing injected: confd's pieces are found

    assert confd.request("GET", "/1.1/ha", token="admin-token")[0] == 200
    assert confd.request("GET", "/1.1/ha", token="expired")[0] == 401
    assert confd.request("PUT", "/1.1/ha", {"node_type": "disabled"}, token="reader-token")[0] == 403
    assert confd.request("GET", "/1.1/ha/status", token="other-tenant-token")[0] == 401
    assert confd.request("PUT", "/1.1/ha", {"node_type": "master", "remote_address": "10.0.0.2"})[0] == 204
    # The ACL each method declares to confd's verifier.
    assert {acl for _token, acl in standin_confd.checked} == {
        "confd.ha.read",
        "confd.ha.update",
        "confd.ha.status.read",
    }
    view = confd.app.view_functions["wazo_ha.ha"].view_class
    assert (view.get.acl, view.put.acl) == ("confd.ha.read", "confd.ha.update")
    assert view.get.tenant_uuid == view.put.tenant_uuid == "master"
    assert confd.app.view_functions["wazo_ha.ha_status"].view_class.get.acl == "confd.ha.status.read"
