"""persona-proxy: serve fine-tuned personas under friendly names over an OpenAI-compatible API."""

__version__ = "0.1.0"

__all__ = ["__version__", "create_app"]


def __getattr__(name: str) -> object:
    # Lazy, so `import app` stays cheap for the CLI and nothing is built at import.
    if name == "create_app":
        from .proxy.server import create_app

        return create_app
    raise AttributeError(name)
