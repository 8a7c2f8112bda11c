"""The HTTP path: the app factory, handlers, request planning (route,
persona, targets, lifecycle), the upstream client and the stream relay.

May import ``app.config``, ``app.tuning`` and ``app.ops``; never ``app.cli``.
Request path: server -> api -> serving -> planning/routing/persona ->
upstream/transport -> relay (sse, rewrite), all under one guard.
"""
