"""Make the console screenshots in docs/ (the README shows them).

    .venv/bin/python docs/screenshots.py

Starts ``persona-proxy serve`` on a throwaway folder with a config like the README's (the maid on a
fine-tune retiring on 2027-01-14, a canary and a shadow successor, the offline demo, two clients),
records 30 days of usage and live fidelity rows into its store, then signs in to /console with
Playwright on Debian's Chromium (an admin key, then a client key), talks to the demo maid in the
try-it panel, and saves ``docs/console-admin.png`` and ``docs/console-client.png``. Chinese text
needs a CJK font (Debian: ``apt-get install fonts-wqy-microhei``).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from app.ops.fidelity import MARKER_SEPARATOR, FidelityRecord
from app.ops.usage import Completed, SqliteStore

DOCS = Path(__file__).resolve().parent
SAMPLE = DOCS.parent / "examples" / "maid_sample.jsonl"
FT = "ft:gpt-4o-mini-2024-07-18:personal::AGfhVX3D"
CONFIG = f"""
[server]
admin_keys_env = "SHOT_ADMIN_KEYS"
[upstreams.openai]
kind = "demo"
fine_tuning_until = "2027-01-06"
[upstreams.vllm]
kind = "demo"
[upstreams.demo]
kind = "demo"
[routes.maid]
upstream = "openai"
model = "{FT}"
shutdown_date = "2027-01-14"
dataset = "{SAMPLE}"
[[routes.maid.fallbacks]]
upstream = "openai"
model = "gpt-4.1-mini"
[[routes.maid.canary]]
upstream = "vllm"
model = "qwen3-maid"
share = 0.2
[[routes.maid.shadow]]
upstream = "openai"
model = "gpt-4.1-mini"
[routes.maid-demo]
upstream = "demo"
model = "demo-maid"
[clients.friends]
key_env = "SHOT_FRIEND_KEYS"
routes = ["maid", "maid-demo"]
rpm = 60
budget_usd = 10
[clients.family]
key_env = "SHOT_FAMILY_KEYS"
rpm = 120
[prices."{FT}"]
input = 0.3
output = 1.2
[prices."gpt-4.1-mini"]
input = 0.4
output = 1.6
"""
TARGETS = [("openai", FT, "primary", 0.8), ("vllm", "qwen3-maid", "canary", 0.2)]


def record(folder: Path) -> None:
    """Thirty days of the traffic a small Open WebUI sends, as the proxy records it: the fine-tune close to
    its training data, the canary a little behind and catching up."""
    from app.tuning.fewshot import exchanges
    from app.tuning.fidelity import Profile

    profile = Profile.of([reply for _, reply in exchanges(SAMPLE)])
    rng, now = random.Random(14), time.time()
    store = SqliteStore(folder / "persona-proxy-usage.sqlite3")
    usage, fidelity = [], []
    for day in range(30, -1, -1):
        for _ in range(int(60 + 40 * rng.random() + day * -1.2 + 40)):
            at = now - day * 86_400 - rng.random() * 80_000
            upstream, model, role, _ = rng.choices(TARGETS, [t[3] for t in TARGETS])[0]
            client = rng.choice(["friends", "friends", "family"])
            user = f"{client}-{rng.randint(1, 4)}"
            usage.append(Completed(at, "maid", upstream, model, "chat", True, 200, None, "key-0", user,
                                   rng.randint(200, 900), rng.randint(30, 200), 250.0, 900.0, False, "chat", role,
                                   f"c{rng.randint(0, 999)}", client))
            close = 1.0 if role == "primary" else 0.93 - day / 200  # how like the training data it is
            fidelity.append(FidelityRecord(
                at, "maid", f"{model}@{upstream}", role, "chat", None, None, profile.script,
                rng.random() < 0.99 * close,
                MARKER_SEPARATOR.join(m for m, share in profile.markers.items() if rng.random() < share * close),
                rng.random() < 0.02 / close, int(profile.median_length * rng.uniform(0.7, 1.3) * close)))
    store.write(usage)
    store.write_fidelity(fidelity)
    store.reset()


def serve(folder: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port), "--config",
                             str(folder / "config.toml")], env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the proxy did not start")


def shoot(base: str, key: str, path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
        page.goto(base + "/console")
        page.fill("#key", key)
        page.click("#signin-form button")
        page.wait_for_selector("body[data-loaded=yes]", timeout=20_000)
        page.select_option("#try-route", "maid-demo")
        page.fill("#try-input", "早安！今天要做什麼呢？")
        page.press("#try-input", "Enter")
        page.wait_for_function("() => (document.querySelector('#try-log .assistant') || {}).textContent?.length > 20")
        page.wait_for_timeout(800)
        page.screenshot(path=str(path), full_page=True)
        browser.close()
    print("wrote", path)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "config.toml").write_text(CONFIG, encoding="utf-8")
        record(folder)
        env = {**os.environ, "PERSONA_PROXY_DATA_DIR": str(folder), "SHOT_ADMIN_KEYS": "shot-admin",
               "SHOT_FRIEND_KEYS": "shot-friend", "SHOT_FAMILY_KEYS": "shot-family"}
        proc, base = serve(folder, env)
        try:
            shoot(base, "shot-admin", DOCS / "console-admin.png")
            shoot(base, "shot-friend", DOCS / "console-client.png")
        finally:
            proc.terminate()
            proc.wait(20)


if __name__ == "__main__":
    main()
