"""The browser console at ``/console``: routes and targets, usage, limits and live fidelity, and a try-it panel.

A room of its own above the serving path: it reads what the running proxy
holds (``app.state.runtime``) and the usage store's rollups, and is mounted
on the proxy's app by :func:`install`. The page is static (HTML, one script,
one stylesheet, shipped in the package: nothing to build, nothing fetched
from elsewhere); its data comes from ``/console/api/*`` with the viewer's key.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.routing import Route

from . import handlers
from .state import ConsoleState

PREFIX = "/console"
logger = logging.getLogger(__name__)


def install(app: Starlette) -> Starlette:
    """Add the console's page and data endpoints to the proxy's ``app``."""
    app.state.console = ConsoleState()
    app.router.routes.extend([
        Route(PREFIX, handlers.page, methods=["GET"]),
        Route(f"{PREFIX}/static/{{name}}", handlers.asset, methods=["GET"]),
        Route(f"{PREFIX}/api/overview", handlers.overview, methods=["GET"]),
        Route(f"{PREFIX}/api/usage", handlers.usage_data, methods=["GET"]),
        Route(f"{PREFIX}/api/fidelity", handlers.fidelity_data, methods=["GET"]),
        Route(f"{PREFIX}/api/probe", handlers.probe, methods=["POST"]),
        Route(f"{PREFIX}/api/try", handlers.try_it, methods=["POST"]),
    ])
    config = app.state.config
    if config.admin_keys:
        logger.info("console at %s: sign in with an admin key, or a client key for its own page", PREFIX)
    else:
        logger.info("console at %s: no admin keys in %s, so only client keys can sign in there", PREFIX,
                    config.server.admin_keys_env)
    return app


__all__ = ["PREFIX", "install"]
