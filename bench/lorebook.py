"""Lorebook matching on the request path: the cost per request of a 200-entry book, at p50 and p99.

    python -m bench.lorebook                 # 20,000 planned requests per case
    python -m bench.lorebook --requests 50000 --entries 400

Times ``plan_request`` (what the serving core calls once per request) for a
plain route, a route served from a card without a lorebook, and the same card
with a book of ``--entries`` entries (three in four with plain keys, one in four
with regex keys, 5% constant, some selective, some at depth). The conversations
are generated: six to ten turns of English and Chinese, a key in about half of
the user messages. Each case runs the same requests; the lorebook's own cost is
the card-with-book time minus the card-without-book time.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from app.config import load_config
from app.proxy.planning import plan_request
from app.proxy.routing import RouteTable

WORDS = ("tea", "garden", "moon", "kitchen", "letter", "ribbon", "lantern", "violin", "harbor", "castle", "apron",
         "茶", "花園", "月亮", "廚房", "信", "緞帶", "燈籠", "小提琴", "港口", "城堡", "圍裙", "主人", "女僕")
FILLER = ("the", "and", "she", "said", "softly", "please", "today", "we", "will", "go", "to", "我", "們", "今天",
          "要", "去", "好", "的", "嗎", "呢", "請", "一起", "看看", "聽說", "真的")


def book(entries: int, rng: random.Random) -> dict[str, object]:
    out = []
    for i in range(entries):
        topic = f"{rng.choice(WORDS)}{i}"
        entry: dict[str, object] = {"name": f"e{i}", "content": f"Fact {i} about {topic}: " + "lore " * 20,
                                    "insertion_order": i, "priority": rng.randint(0, 100), "enabled": True}
        if i % 4 == 3:
            entry |= {"keys": [f"/\\b{topic}s?\\b/i", f"/{topic}-(day|night)/"], "use_regex": True}
        else:
            entry["keys"] = [topic, f"{topic}x"]
        if i % 20 == 0:
            entry |= {"constant": True, "keys": []}
        if i % 10 == 5:
            entry |= {"selective": True, "secondary_keys": [rng.choice(WORDS)]}
        if i % 15 == 7:
            entry["content"] = "@@depth 2\n" + str(entry["content"])
        out.append(entry)
    return {"name": "bench", "scan_depth": 4, "token_budget": 2000, "entries": out}


def conversation(rng: random.Random, entries: int) -> list[dict[str, str]]:
    messages = []
    for turn in range(rng.randint(6, 10)):
        words = [rng.choice(FILLER) for _ in range(rng.randint(15, 60))]
        if rng.random() < 0.5:
            words.insert(rng.randrange(len(words)), f"{rng.choice(WORDS)}{rng.randrange(entries)}")
        messages.append({"role": "user" if turn % 2 == 0 else "assistant", "content": " ".join(words)})
    if messages[-1]["role"] != "user":
        messages.append({"role": "user", "content": "好的，謝謝。"})
    return messages


def setup(folder: Path, entries: int, rng: random.Random) -> RouteTable:
    card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Lily", "description": "{{char}} is a maid who serves {{user}}.", "personality": "cheerful",
        "mes_example": "<START>\n{{user}}: Hi\n{{char}}: Hello, master!", "post_history_instructions": "Stay Lily."}}
    (folder / "card.json").write_text(json.dumps(card))
    (folder / "book.json").write_text(json.dumps({"spec": "lorebook_v3", "data": book(entries, rng)}))
    route = '[routes.{name}]\nupstream = "demo"\nmodel = "m"\nsystem_prompt = "You are a maid."\n'
    (folder / "config.toml").write_text(
        '[upstreams.demo]\nkind = "demo"\n' + route.format(name="plain")
        + route.format(name="card") + 'persona_card = "card.json"\n'
        + route.format(name="lore") + 'persona_card = "card.json"\nlorebook = "book.json"\n')
    return RouteTable.from_config(load_config(folder / "config.toml", environ={}))


def timings(routes: RouteTable, name: str, bodies: list[dict[str, object]]) -> list[float]:
    route = routes.resolve(name)
    target = route.targets[0]
    headers = [(b"x-openwebui-user-name", b"Master")]
    for body in bodies[:200]:  # warm up
        plan_request(route, target, body, headers, forward_user_id=False)
    out = []
    for body in bodies:
        started = time.perf_counter_ns()
        plan_request(route, target, body, headers, forward_user_id=False)
        out.append((time.perf_counter_ns() - started) / 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--entries", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        routes = setup(Path(folder), args.entries, rng)
        bodies: list[dict[str, object]] = [{"model": "x", "messages": conversation(rng, args.entries)}
                                           for _ in range(args.requests)]
        results = {name: timings(routes, name, bodies) for name in ("plain", "card", "lore")}
    print(f"plan_request per request, us ({args.requests} requests, a {args.entries}-entry book)")
    print(f"{'case':<28}{'p50':>8}{'p99':>8}")
    labels = {"plain": "route, no card", "card": "card, no lorebook", "lore": f"card + {args.entries}-entry book"}
    for name, values in results.items():
        q = statistics.quantiles(values, n=100)
        print(f"{labels[name]:<28}{statistics.median(values):>8.1f}{q[98]:>8.1f}")
    cost = [b - a for a, b in zip(results["card"], results["lore"], strict=True)]
    q = statistics.quantiles(cost, n=100)
    print(f"{'the lorebook (difference)':<28}{statistics.median(cost):>8.1f}{q[98]:>8.1f}")


if __name__ == "__main__":
    main()
