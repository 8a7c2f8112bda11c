"""persona-proxy: serve fine-tuned personas under friendly names over an OpenAI-compatible API."""

__version__ = "0.1.0"

__all__ = ["__version__", "create_app"]


def __getattr__(name: str) -> object:
    # Lazy, so `import app` stays cheap for the CLI and nothing is built at import.
    if name == "create_app":
        return _create_app
    raise AttributeError(name)


def _create_app(config: object) -> object:
    """The proxy with its console: what ``persona-proxy serve`` runs."""
    from .cli.serve import full_app

    return full_app(config)  # type: ignore[arg-type]
