"""Who may call the resources: an *authorizer* chosen when the plugin loads.

An authorizer gives the base class of the resources and ``protect(acl)``, a
decorator for each HTTP method that requires ``acl`` and the master tenant.

* Inside wazo-confd, :func:`confd_authorizer` uses confd's own pieces, imported
  only when called: its resource base class (which verifies the token and the
  tenant and renders refusals) and its ``required_acl`` and
  ``required_master_tenant`` decorators. The answers are confd's own.
* Elsewhere (the tests, a host without confd's verifier), :class:`TokenAuthorizer`
  applies wazo-auth's contract through a :class:`TokenChecker`: the token comes
  from the ``X-Auth-Token`` header; a missing, unknown or expired token is 401;
  a valid token without the ACL is 403; a token of another tenant than the
  master tenant is 401 (confd checks the ACL first, then the tenant).

With neither, the plugin refuses to load: ``/ha`` is never served unchecked.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Protocol, TypeVar

import flask_restful
from flask import request

F = TypeVar("F", bound=Callable[..., Any])

#: wazo-auth's answers to ``HEAD /0.1/token/{token}?scope={acl}``.
TOKEN_VALID, TOKEN_FORBIDDEN, TOKEN_UNKNOWN = 204, 403, 404


class Authorizer(Protocol):
    resource_base: type

    def protect(self, acl: str) -> Callable[[F], F]: ...


class TokenChecker(Protocol):
    """wazo-auth's token check, as seen by a service."""

    def check(self, token: str, acl: str) -> int:
        """The status wazo-auth answers: 204 valid with ``acl``, 403 valid without it, 404 unknown or expired."""

    def tenant_uuid(self, token: str) -> str | None:
        """The token's tenant (``metadata.tenant_uuid`` of ``GET /0.1/token/{token}``)."""


class ConfdAuthorizer:
    """confd's own verification: its base class checks what its decorators declare."""

    def __init__(self, resource_base: type, required_acl: Callable, required_master_tenant: Callable):
        self.resource_base = resource_base
        self._required_acl = required_acl
        self._required_master_tenant = required_master_tenant

    def protect(self, acl: str) -> Callable[[F], F]:
        def decorate(method: F) -> F:
            return self._required_master_tenant()(self._required_acl(acl)(method))

        return decorate


def confd_authorizer() -> ConfdAuthorizer | None:
    """confd's authorizer when running inside wazo-confd, else None."""
    try:
        from wazo_confd.auth import required_acl, required_master_tenant
        from wazo_confd.helpers.restful import ConfdResource
    except ImportError:
        return None
    return ConfdAuthorizer(ConfdResource, required_acl, required_master_tenant)


class TokenAuthorizer:
    """wazo-auth's contract through ``checker``; refusals in confd's error format."""

    resource_base = flask_restful.Resource

    def __init__(self, checker: TokenChecker, master_tenant_uuid: str):
        self.checker = checker
        self.master_tenant_uuid = master_tenant_uuid

    def protect(self, acl: str) -> Callable[[F], F]:
        def decorate(method: F) -> F:
            @wraps(method)
            def checked(*args: Any, **kwargs: Any) -> Any:
                refusal = self.refusal(request.headers.get("X-Auth-Token", ""), acl)
                return refusal if refusal else method(*args, **kwargs)

            return checked  # type: ignore[return-value]

        return decorate

    def refusal(self, token: str, acl: str) -> tuple[list[str], int] | None:
        """None when ``token`` may use ``acl`` on the master tenant, else confd's (body, status)."""
        if not token:
            return ["Unauthorized: no token (X-Auth-Token header)"], 401
        answer = self.checker.check(token, acl)
        if answer == TOKEN_UNKNOWN:
            return ["Unauthorized: the token is unknown or expired"], 401
        if answer == TOKEN_FORBIDDEN:
            return [f"Forbidden: the token does not grant {acl}"], 403
        if answer != TOKEN_VALID:
            return [f"Authentication server unreachable or confused (answered {answer})"], 503
        if self.checker.tenant_uuid(token) != self.master_tenant_uuid:
            return ["Unauthorized: only the master tenant may use /ha"], 401
        return None
