"""Clients: who is calling (named keys), what they may use (route scopes) and how much (limits).

A layer of its own between configuration and the HTTP path. The proxy enters
it in one place (:class:`~app.clients.gate.Gate`): a request is admitted with
a reservation, or refused with the limit and its reset; when it ends it is
settled to what the upstream reported. Counters live in this process
(:mod:`app.clients.local`) or in Redis (:mod:`app.clients.redis_store`),
shared by every worker and replica.
"""
