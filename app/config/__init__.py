"""Configuration: the typed settings, loading and validating the TOML file, editing it in place.

The lowest layer: it imports nothing else of ``app``. Everything else reads
its settings from here. ``editing`` (tomlkit) is for the CLI and is not
re-exported, so the server never loads it.
"""

from .loading import ConfigError, default_config_data, is_loopback, load_config
from .settings import (
    Config,
    PriceSettings,
    RouteSettings,
    ServerSettings,
    Upstream,
    UpstreamSettings,
    UsageSettings,
)
from .targets import CanarySettings, FallbackSettings, FidelitySettings, ShadowSettings

__all__ = [
    "CanarySettings",
    "Config",
    "ConfigError",
    "FallbackSettings",
    "FidelitySettings",
    "PriceSettings",
    "RouteSettings",
    "ServerSettings",
    "ShadowSettings",
    "Upstream",
    "UpstreamSettings",
    "UsageSettings",
    "default_config_data",
    "is_loopback",
    "load_config",
]
