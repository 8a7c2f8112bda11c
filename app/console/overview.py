"""The overview panel's data: routes and their targets, and clients with what they used.

An admin sees every route and target (role, upstream, model, reachability,
retirement) and every client with its key hashes; a key holder sees the
names of the routes it may use with their retirement dates, and its own
client's limits and use. Neither sees a persona's prompt or an upstream's
address or key: they are never put in this data.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..clients.gate import Gate
from ..clients.local import LocalStore
from ..clients.report import client_entry, used_of
from ..config import Config
from ..proxy.admission import Admission
from ..proxy.lifecycle import Lifecycle, target_status
from ..proxy.routing import Route, Target
from .access import Viewer
from .probe import Found


def target_view(target: Target, config: Config, lifecycle: Lifecycle, found: Found | None,
                today: dt.date) -> dict[str, Any]:
    status = target_status(target, lifecycle.shutdown_date(target), found.reachable if found else None,
                           found.models if found else None,
                           config.upstreams[target.upstream].fine_tuning_cutoff, today)
    return {"name": target.name, "role": target.role, "index": target.index, "upstream": target.upstream,
            "model": target.model, "share": target.share or None, **status,
            "note": found.note if found else "not checked yet", "checked": round(found.checked) if found else None}


def routes_view(routes: Iterable[Route], viewer: Viewer, admission: Admission | None, config: Config,
                lifecycle: Lifecycle, found: Mapping[str, Found], today: dt.date) -> list[dict[str, Any]]:
    """Every route the viewer may see (a key holder: those in its scope, as ``/v1/models`` lists them);
    targets only for an admin."""
    out = []
    for route in routes:
        if not viewer.admin and (route.settings.hidden or
                                 (admission is not None and not admission.allows(viewer.client, route))):
            continue
        date = lifecycle.next_shutdown(route)
        entry: dict[str, Any] = {"name": route.name, "next_shutdown": date.isoformat() if date else None,
                                 "days_left": (date - today).days if date else None}
        if viewer.admin:
            entry["hidden"] = route.settings.hidden
            entry["targets"] = [target_view(t, config, lifecycle, found.get(t.upstream), today)
                                for t in route.every_target]
        out.append(entry)
    return out


async def clients_view(config: Config, gate: Gate | None, viewer: Viewer) -> list[dict[str, Any]]:
    """Clients with their limits and live use: all of them for an admin, its own for a key holder."""
    names = sorted(config.clients) if viewer.admin else [viewer.client] if viewer.client in config.clients else []
    source = "redis" if gate is not None and not isinstance(gate.store, LocalStore) else "this process"
    now = time.time()
    out = []
    for name in names:
        assert name is not None
        settings = config.clients[name]
        state, note = None, ""
        if gate is not None and settings.any:
            try:
                state = (await gate.states(name, settings))[0]
            except Exception as exc:  # a store that does not answer: say so, show the limits all the same
                note = f"the limits store did not answer ({type(exc).__name__})"
        entry = client_entry(config, name, source, used_of(state, None, source, settings, now) if state else None)
        entry["note"] = note
        if not viewer.admin:  # a key holder's own hashes and variable are the operator's to know
            del entry["keys"], entry["key_env"]
        out.append(entry)
    return out
