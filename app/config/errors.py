"""The one error the config layer raises."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration problem, worded for the person who has to fix it."""
