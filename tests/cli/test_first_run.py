"""What a new user does first: the example config copied alone, the container's paths."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from app.config import load_config

from ..conftest import REPO
from ..fakes.servers import serve_process


def test_the_example_config_alone_in_an_empty_folder_serves_the_demo(tmp_path: Path):
    # The compose layout: a config folder with only the copied example, a separate data folder,
    # and a working directory that is neither (the repository's examples/ is not there).
    config_dir, data_dir, elsewhere = tmp_path / "config", tmp_path / "data", tmp_path / "cwd"
    for folder in (config_dir, elsewhere):
        folder.mkdir()
    shutil.copy(REPO / "config.example.toml", config_dir / "config.toml")
    env = {k: v for k, v in os.environ.items() if k != "PERSONA_PROXY_API_KEYS"}
    env["PERSONA_PROXY_DATA_DIR"] = str(data_dir)
    with serve_process(["--config", str(config_dir / "config.toml")], env=env, cwd=elsewhere) as (_, base):
        models = [m["id"] for m in httpx.get(base + "/v1/models").json()["data"]]
        reply = httpx.post(base + "/v1/chat/completions", timeout=10, json={
            "model": "maid-demo", "messages": [{"role": "user", "content": "你好"}]})
        assert reply.status_code == 200, reply.text
        assert "主人" in reply.json()["choices"][0]["message"]["content"]
        assert "maid-demo" in models
    # Records went to the data folder, none beside the (possibly read-only) config.
    assert sorted(p.name for p in config_dir.iterdir()) == ["config.toml"]
    with sqlite3.connect(data_dir / "persona-proxy-usage.sqlite3") as db:
        assert db.execute("SELECT route, status FROM usage").fetchall() == [("maid-demo", 200)]


def test_the_image_and_compose_agree_on_the_config_folder_and_the_data_volume():
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    compose = (REPO / "compose.yaml").read_text(encoding="utf-8")
    assert "ENV PERSONA_PROXY_DATA_DIR=/data" in dockerfile
    assert re.search(r"mkdir -p /data && chown persona /data", dockerfile)
    assert '"--config", "/config/config.toml"' in dockerfile and '"--config", "/config/config.toml"' in compose
    assert "- ./config:/config:ro" in compose and re.search(r"- persona-data:/data\n", compose)
    # The console is published on the host's loopback only, with the admin key variable .env.example names.
    assert '- "127.0.0.1:8080:8080"' in compose and "/console" in compose
    assert "PERSONA_PROXY_ADMIN_KEYS=" in (REPO / ".env.example").read_text(encoding="utf-8")
    kube = (REPO / "deploy" / "kubernetes" / "persona-proxy.yaml").read_text(encoding="utf-8")
    assert "mountPath: /data" in kube and "readOnlyRootFilesystem: true" in kube


def test_the_readmes_sdk_snippet_runs_offline_as_written(tmp_path: Path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use it from the OpenAI SDK", 1)[1].split("\n## ", 1)[0]
    # Both snippets, chat completions then the Responses API, run as one script.
    snippet = "\n".join(block.split("```", 1)[0] for block in section.split("```python\n")[1:])
    env = {k: v for k, v in os.environ.items() if k != "PERSONA_PROXY_API_KEYS"}
    with serve_process([], env=env, cwd=tmp_path) as (_, base):
        script = snippet.replace("http://127.0.0.1:8080/v1", base + "/v1")
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("主人") >= 4  # plain and streamed, in each API


def test_git_ignores_a_users_config_and_usage_records():
    names = ["config.toml", "config/config.toml", "persona-proxy-usage.sqlite3", "persona-proxy-usage.sqlite3-wal",
             ".env"]
    result = subprocess.run(["git", "check-ignore", "--no-index", *names], cwd=REPO, capture_output=True, text=True)
    assert result.stdout.split() == names


def test_no_source_or_test_file_is_ignored_by_git():
    # A too-wide pattern (config/ once matched tests/config/) silently leaves files out of every commit.
    files = [str(p.relative_to(REPO)) for folder in ("app", "tests", "docs", "bench")
             for p in (REPO / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    result = subprocess.run(["git", "check-ignore", "--no-index", *files], cwd=REPO, capture_output=True, text=True)
    assert result.stdout.split() == []


def test_the_kubernetes_config_loads_with_the_secrets_its_header_creates(tmp_path: Path):
    kube = (REPO / "deploy" / "kubernetes" / "persona-proxy.yaml").read_text(encoding="utf-8")
    block = kube.split("  config.toml: |\n", 1)[1].split("\n---", 1)[0]
    config_file = tmp_path / "config.toml"
    config_file.write_text("\n".join(line[4:] for line in block.splitlines()), encoding="utf-8")
    secrets = {name: f"{name.lower()}-{'x' * 16}" for name in re.findall(r"--from-literal=([A-Z_]+)=", kube)}
    secrets["PERSONA_PROXY_USAGE_DB_URL"] = "postgresql://u:p@postgres:5432/persona"
    secrets["PERSONA_PROXY_REDIS_URL"] = "redis://redis:6379/0"
    config = load_config(config_file, environ=secrets)
    # Every variable the config names is one the secret holds, and the pods read that secret.
    named = {config.usage.url_env, config.limits.redis_url_env, config.server.api_keys_env,
             *(c.key_env for c in config.clients.values()), *(u.api_key_env for u in config.upstreams.values())}
    assert named <= set(secrets)
    assert "secretRef: {name: persona-proxy-secrets}" in kube and "replicas: 2" in kube
    assert config.redis_url is not None and config.clients["openwebui"].per_user.rpm == 20


def test_compose_offers_redis_under_the_name_the_example_env_points_at():
    compose = (REPO / "compose.yaml").read_text(encoding="utf-8")
    env = (REPO / ".env.example").read_text(encoding="utf-8")
    assert re.search(r"\n  redis:\n    image: redis:7-alpine\n    profiles: \[\"limits\"\]", compose)
    assert "# PERSONA_PROXY_REDIS_URL=redis://redis:6379/0" in env
    assert "redis-data:/data" in compose and "--appendonly" in compose
