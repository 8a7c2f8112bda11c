"""Model lifecycle: shutdown dates, retired targets, and warnings before it is too late.

Shutdown dates come from the config (``shutdown_date``) or from the
upstream's ``/v1/models`` (OpenAI lists ``shutdown_date`` per model). A
target past its date is skipped without a request; one that just answered
"model not found" is skipped for a while, so a retired primary does not cost
a failed request every time.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from .routing import Route, Target

logger = logging.getLogger(__name__)

WARN_WITHIN_DAYS = 30
RETIRED_FOR_SECONDS = 600.0


def parse_date(value: Any) -> dt.date | None:
    """A ``YYYY-MM-DD`` date, or a Unix timestamp (some servers use those); else None."""
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return dt.datetime.fromtimestamp(value, dt.UTC).date()
    return None


def shutdown_dates(models_list: Any) -> dict[str, dt.date]:
    """Model id -> shutdown date, from an upstream's ``GET /models`` answer."""
    found: dict[str, dt.date] = {}
    data = models_list.get("data") if isinstance(models_list, dict) else None
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            date = parse_date(item.get("shutdown_date"))
            if date is not None:
                found[item["id"]] = date
    return found


def utc_today() -> dt.date:
    """Today in UTC: shutdown dates are UTC days (a Unix time from an upstream is read in UTC too)."""
    return dt.datetime.now(dt.UTC).date()


class Lifecycle:
    """What is known about each target's retirement, for routing and warnings."""

    def __init__(self, today: Callable[[], dt.date] = utc_today,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._today = today
        self._clock = clock
        self._learned: dict[tuple[str, str], dt.date] = {}
        self._retired_until: dict[tuple[str, str], float] = {}

    def learn(self, upstream: str, models_list: Any) -> None:
        for model, date in shutdown_dates(models_list).items():
            self._learned[(upstream, model)] = date

    def shutdown_date(self, target: Target) -> dt.date | None:
        return target.shutdown_date or self._learned.get((target.upstream, target.model))

    def mark_retired(self, target: Target) -> None:
        self._retired_until[(target.upstream, target.model)] = self._clock() + RETIRED_FOR_SECONDS

    def usable(self, route: Route) -> list[Target]:
        """The route's targets worth trying, in order; all of them if none looks usable."""
        today, now = self._today(), self._clock()
        usable = [t for t in route.targets if not self._retired(t, today, now)]
        return usable or list(route.targets)

    def available(self, target: Target) -> bool:
        """Whether one target (a canary, say) is worth trying now."""
        return not self._retired(target, self._today(), self._clock())

    def _retired(self, target: Target, today: dt.date, now: float) -> bool:
        date = self.shutdown_date(target)
        if date is not None and date <= today:
            return True
        return self._retired_until.get((target.upstream, target.model), 0.0) > now

    def warnings(self, routes: Iterable[Route]) -> list[str]:
        today = self._today()
        lines = []
        for route in routes:
            for target in route.targets:
                date = self.shutdown_date(target)
                if date is None or (date - today).days > WARN_WITHIN_DAYS:
                    continue
                when = relative_days((date - today).days)
                role = "primary" if target.index == 0 else f"fallback {target.index}"
                lines.append(f"route {route.name}: {role} {target.label} shuts down on {date} ({when})"
                             + ("; add a fallback" if len(route.targets) == 1 else ""))
        return lines

    def next_shutdown(self, route: Route) -> dt.date | None:
        """The earliest coming shutdown among the targets that can still serve; None when none is known."""
        today = self._today()
        dates = [d for d in map(self.shutdown_date, route.targets) if d is not None and d > today]
        return min(dates, default=None)


class _AnyModel(frozenset[str]):
    def __contains__(self, item: object) -> bool:
        return True


# What the built-in demo lists: it answers for any model id it is given.
ANY_MODEL: frozenset[str] = _AnyModel()


def listed_models(listing: Any) -> frozenset[str] | None:
    """The model ids an upstream's ``GET /models`` answer lists (none for an object without a ``data``
    list); None when the answer is not an object at all."""
    if not isinstance(listing, dict):
        return None
    data = listing.get("data")
    return frozenset(m["id"] for m in (data if isinstance(data, list) else ())
                     if isinstance(m, dict) and isinstance(m.get("id"), str))


def target_status(target: Target, date: dt.date | None, reachable: bool | None, models: frozenset[str] | None,
                  cutoff: dt.date | None, today: dt.date) -> dict[str, Any]:
    """Whether a target can serve, as ``routes`` and the console show it: ``models`` is what its upstream
    lists (None: unknown), ``date`` its shutdown date, ``cutoff`` its upstream's last fine-tuning day."""
    listed = None if models is None else target.model in models
    return {"fine_tune": is_fine_tune(target.model), "fine_tuning_until": cutoff.isoformat() if cutoff else None,
            "reachable": reachable, "model_exists": listed,
            "shutdown_date": date.isoformat() if date else None, "days_left": (date - today).days if date else None,
            "can_serve": bool(reachable) and listed is not False and (date is None or date > today)}


def is_fine_tune(model: str) -> bool:
    """An OpenAI fine-tune id (``ft:BASE:ORG::ID``): a model that only its provider's fine-tuning can re-make."""
    return model.startswith("ft:")


def relative_days(days: int) -> str:
    """``in 3 days``, ``in 1 day``, ``today``, ``1 day ago``."""
    unit = "day" if abs(days) == 1 else "days"
    return f"in {days} {unit}" if days > 0 else "today" if days == 0 else f"{-days} {unit} ago"


def log_warnings(lifecycle: Lifecycle, routes: Iterable[Route]) -> None:
    for line in lifecycle.warnings(routes):
        logger.warning("%s", line)

