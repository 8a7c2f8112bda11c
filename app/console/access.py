"""Who is looking at the console: an admin, or the holder of one client key.

The key arrives as ``Authorization: Bearer`` on every data request (the page
keeps it in the tab's ``sessionStorage``; never in a URL or a cookie, so no
other site can make the browser send it). Admin keys are tried first, then
client keys, both in constant time; a key never appears in an answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from ..proxy.auth import bearer_token
from ..proxy.errors import AuthenticationFailed, PermissionDenied


@dataclass(frozen=True, slots=True)
class Viewer:
    """An admin sees everything; a key holder only its own client (or, for a key without a name, its key)."""

    admin: bool
    client: str | None = None
    key_id: str | None = None

    def body(self) -> dict[str, object]:
        if self.admin:
            return {"role": "admin"}
        return {"role": "client", "client": self.client, "key_id": None if self.client else self.key_id}


def viewer_of(request: Request) -> Viewer:
    """The viewer the request's key names; 401 in OpenAI's shape without one, or for a key nobody holds."""
    token = bearer_token(request.headers.get("authorization", "").encode("latin-1") or None)
    admin_keys = request.app.state.admin_keys
    if token is None:
        raise _refused("Missing key: sign in to the console with an admin key or your client key.")
    if admin_keys and admin_keys.identify(token) is not None:
        return Viewer(admin=True)
    runtime = request.app.state.runtime
    identity = runtime.client_keys.identify(token) if runtime is not None else None
    if identity is None:
        env = request.app.state.config.server.admin_keys_env
        hint = "" if admin_keys else f" (no admin keys are set: put one in {env} and restart to open the whole console)"
        raise _refused("Incorrect key for the persona-proxy console" + hint + ".")
    return Viewer(admin=False, client=identity.client, key_id=identity.key_id)


def admin_of(request: Request) -> Viewer:
    """The viewer, who must hold an admin key (403 for a client key)."""
    viewer = viewer_of(request)
    if not viewer.admin:
        raise PermissionDenied("This part of the console needs an admin key.")
    return viewer


def _refused(message: str) -> AuthenticationFailed:
    error = AuthenticationFailed(message)
    error.headers["www-authenticate"] = "Bearer"
    return error
