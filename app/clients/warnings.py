"""What is doubtful, not wrong, in a config's clients: said by `check` and at start-up."""

from __future__ import annotations

from ..config import Config


def client_warnings(config: Config) -> list[str]:
    """One line each: budgets over unpriced models, clients without keys, limits nobody can be held to."""
    found: list[str] = []
    for name, client in config.clients.items():
        if not config.client_key_sets.get(name):
            found.append(f"clients.{name}: {client.key_env} holds no keys, so this client cannot sign in; "
                         f"set {client.key_env} (comma-separated keys)")
        if not client.budgeted:
            continue
        unpriced = sorted({model for route in client.routes or config.routes for model in _models(config, route)
                           if model not in config.prices})
        if unpriced:
            found.append(f"clients.{name}: a budget, but these models have no [prices.\"MODEL\"] entry, so their "
                         f"use costs nothing against it: {', '.join(unpriced)}")
    if config.clients and not (config.client_keys or any(config.client_key_sets.values())):
        found.append("clients: no keys are set at all, so the proxy serves without authentication and no "
                     "client's scope or limits apply")
    return found


def _models(config: Config, route: str) -> set[str]:
    settings = config.routes[route]
    models = {settings.model, *(t.model for t in settings.fallbacks), *(t.model for t in settings.canary)}
    if settings.task_model:
        models.add(settings.task_model)
    return models
