"""The persona-proxy command: help, config errors, and a real `serve` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from click.testing import CliRunner

from app.cli.main import cli

from ..conftest import REPO
from ..fakes.servers import serve_process


def test_help_on_every_command():
    runner = CliRunner()
    for args in (["--help"], ["serve", "--help"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output
    assert "--config" in runner.invoke(cli, ["serve", "--help"]).output


def test_config_error_is_one_clean_message(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('[routes.maid]\nupstream = "nowhere"\nmodel = "m"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["serve", "--config", str(path)])
    assert result.exit_code == 1
    assert "bad.toml" in result.output and "routes.maid.upstream" in result.output
    assert "Traceback" not in result.output


def test_exposed_bind_without_keys_refuses_to_start():
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"], env={"PERSONA_PROXY_API_KEYS": ""})
    assert result.exit_code == 1
    assert "allow_unauthenticated" in result.output


def test_serve_with_the_default_config_runs_the_offline_demo(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "PERSONA_PROXY_API_KEYS"}
    with serve_process([], env=env, cwd=tmp_path) as (proc, base):
        reply = httpx.post(base + "/v1/chat/completions", timeout=10, json={
            "model": "maid-demo", "messages": [{"role": "user", "content": "你好"}]})
        assert reply.status_code == 200 and "主人" in reply.json()["choices"][0]["message"]["content"]
    output = proc.output
    # uvicorn shuts down cleanly, then re-raises SIGTERM so the exit status tells why it stopped.
    assert proc.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in output
    assert "serving WITHOUT authentication (loopback only)" in output
    assert "OPENAI_API_KEY is not set" in output


def test_uvicorn_options_trust_forwarded_headers_only_when_configured():
    from app.cli.serve import uvicorn_options
    from app.config import ServerSettings

    default = uvicorn_options(ServerSettings())
    assert default["proxy_headers"] is False
    assert default["timeout_graceful_shutdown"] == 30.0
    assert default["loop"] == "app.cli.accept:new_event_loop"  # greedy accept for one worker only
    assert uvicorn_options(ServerSettings(), workers=2)["loop"] == "auto"
    trusted = uvicorn_options(ServerSettings(forwarded_allow_ips=["10.0.0.2"], shutdown_grace=5))
    assert trusted["proxy_headers"] is True and trusted["forwarded_allow_ips"] == ["10.0.0.2"]
    assert trusted["timeout_graceful_shutdown"] == 5


def test_a_busy_port_is_one_line_and_nothing_starts(tmp_path: Path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "app", "serve", "--port", str(port)], capture_output=True,
                                text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"Error: 127.0.0.1:{port} is already in use: stop what is listening there, "
                                     "or pick another port with --port (or server.port)")
    assert "startup complete" not in result.stdout + result.stderr and "Traceback" not in result.stderr


def test_the_server_process_loads_no_cli_only_code():
    # Every worker pays for what it imports; evaluation, fine-tuning jobs and config editing are CLI-only
    # (few-shot exchanges from a training set are not: fallbacks use them; nor are the fidelity measures, whose
    # script detector and chrF load only when a route has a dataset).
    script = (
        "import sys\n"
        "from app.cli.main import cli\n"
        "cli.get_command(None, 'serve')\n"
        "from app.cli.serve import worker_app\n"
        "from app.config import load_config\n"
        "from app.proxy.server import create_app\n"
        "create_app(load_config(None))\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(\n"
        "    ('app.evals', 'app.tuning.finetune', 'app.tuning.report', 'hanzidentifier', 'sacrebleu',\n"
        "     'app.config.editing', 'tomlkit', 'tiktoken', 'pydantic_settings',\n"
        "     'websockets', 'wsproto')))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


def test_the_server_collects_young_objects_less_often_and_leaves_startup_objects_alone():
    import gc

    from app.cli.serve import GC_YOUNG_THRESHOLD, _freeze_startup_objects

    before = gc.get_threshold()
    try:
        _freeze_startup_objects()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
