"""The HTTP resources, in the shapes of wazo-confd's own HA plugin.

* ``GET /ha`` (``confd.ha.read``): ``200 {"node_type": …, "remote_address": …}``;
* ``PUT /ha`` (``confd.ha.update``): the same body, validated by the library;
  ``204`` with no body; ``400`` with one ``Input Error - <field>: [...]`` per bad
  field; ``409`` while another edit runs; ``500`` with the library's message
  when an edit step failed (the steps already done were undone);
* ``GET /ha/status`` (``confd.ha.status.read``): ``wazo-ha status --json``.

All three require the master tenant. Errors are confd's list of strings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import request

from .answers import ErrorAnswer, error_answer
from .auth import Authorizer
from .service import HAService


def build_resources(authorizer: Authorizer) -> tuple[type, type]:
    """The ``/ha`` and ``/ha/status`` resource classes on the authorizer's base class.

    Both take the :class:`HAService` as their one constructor argument
    (``api.add_resource(..., resource_class_args=(service,))``).
    """
    base = authorizer.resource_base
    protect = authorizer.protect

    class WazoHAResource(base):
        def __init__(self, service: HAService):
            super().__init__()
            self.service = service

        @protect("confd.ha.read")
        def get(self):
            return answered(self.service.get)

        @protect("confd.ha.update")
        def put(self):
            def edit():
                self.service.edit(json_body())
                return "", 204

            return answered(edit)

    class WazoHAStatusResource(base):
        def __init__(self, service: HAService):
            super().__init__()
            self.service = service

        @protect("confd.ha.status.read")
        def get(self):
            return answered(self.service.status)

    return WazoHAResource, WazoHAStatusResource


def answered(action: Callable[[], Any]) -> Any:
    """``action()``, or confd's (messages, status) for whatever it raised."""
    try:
        return action()
    except Exception as exc:
        return error_answer(exc)


def json_body() -> Any:
    """The request's JSON document, any JSON value (the library judges its shape)."""
    if not request.is_json:
        raise ErrorAnswer(400, ["Input Error - body: the request Content-Type must be application/json"])
    try:
        return json.loads(request.get_data(cache=False))
    except ValueError:
        raise ErrorAnswer(400, ["Input Error - body: not a valid JSON document"]) from None
