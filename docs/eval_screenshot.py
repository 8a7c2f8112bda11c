"""Make docs/eval-report.png: an eval of a two-target route plus a candidate, against local fakes.

    .venv/bin/python docs/eval_screenshot.py      (needs Debian's chromium; run from the repository root)

The fakes answer like a faithful fine-tune (Traditional Chinese), a base model that drifted into Simplified
Chinese, and a candidate that answers in English; the report is then opened in headless Chromium.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.cli.main import cli
from tests.fakes.upstream import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent
ANSWERS = {"finetune": "主人，莉莉馬上為您準備好！請稍等一下喔～❤️",
           "base": "主人，莉莉马上为您准备好！请稍等一下哦～❤️",
           "candidate": "Of course, master! I will get that ready for you right away."}


def main() -> None:
    fakes = {name: FakeOpenAI().start() for name in ANSWERS}
    try:
        for name, fake in fakes.items():
            fake.content = ANSWERS[name]
        work = Path(tempfile.mkdtemp())
        (work / "maid.jsonl").write_bytes((REPO / "examples" / "maid_sample.jsonl").read_bytes())
        upstreams = "".join(f'[upstreams.{n}]\nbase_url = "{f.url}/v1"\n\n' for n, f in fakes.items())
        (work / "config.toml").write_text(upstreams + """
[routes.maid]
upstream = "finetune"
model = "ft:gpt-4o-mini-2024-07-18:personal::AGfhVX3D"
system_prompt = "你是一個可愛的女僕機器人，用繁體中文回答主人的問題。"

[[routes.maid.fallbacks]]
upstream = "base"
model = "gpt-4.1-mini"
few_shot_from = "maid.jsonl"
few_shot_count = 3
""", encoding="utf-8")
        report = work / "report.html"
        result = CliRunner().invoke(cli, ["eval", "maid", "--config", str(work / "config.toml"), "--limit", "6",
                                          "--target", "gpt-4.1@candidate", "--html", str(report)])
        print(result.stdout)
        out = REPO / "docs" / "eval-report.png"
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1200,1700", f"--screenshot={out}", report.as_uri()], check=True,
                       capture_output=True, timeout=120)
        print(f"wrote {out}")
    finally:
        for fake in fakes.values():
            fake.stop()


if __name__ == "__main__":
    main()
