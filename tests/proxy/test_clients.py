"""Named clients on a real server: scopes, limits, OpenAI's rate-limit answers, records (in-process store)."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import openai
import pytest

from ..clock import fresh_minute
from ..conftest import DEFAULT_ROUTES
from ..fakes.styles import FT_MODEL, MAID_PROMPT
from ..fakes.upstream import Gate as Hold
from ..fakes.upstream import Reply, chunk, completion

BOT_KEY, BOT_KEY_2 = "bot-key-" + "a" * 24, "bot-key-" + "b" * 24
WEB_KEY = "web-key-" + "c" * 24
ENV = {"BOT_KEYS": f"{BOT_KEY}, {BOT_KEY_2}", "WEB_KEYS": WEB_KEY}
ROUTES = DEFAULT_ROUTES + f"""
[routes.mini]
upstream = "fake"
model = "gpt-4.1-mini"

[prices."{FT_MODEL}"]
input = 1000.0
output = 1000.0
"""


def clients(bot: str = "", web: str = "", per_user: str = "") -> str:
    text = f'\n[clients.bot]\nkey_env = "BOT_KEYS"\nroutes = ["maid"]\n{bot}\n'
    text += f'\n[clients.web]\nkey_env = "WEB_KEYS"\n{web}\n'
    return text + (f"\n[clients.web.per_user]\n{per_user}\n" if per_user else "")


def chat(base: str, key: str, model: str = "maid", **extra: object) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    return httpx.post(base + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"},
                      timeout=10)


@pytest.fixture
def limited(make_proxy):
    def make(bot: str = "", web: str = "", per_user: str = "", routes: str = ROUTES,
             env: dict[str, str] | None = None):
        return make_proxy(routes + clients(bot, web, per_user), env={**ENV, **(env or {})})
    return make


def test_models_list_only_the_routes_in_scope_and_others_are_404(limited, fake):
    proxy = limited()
    bot = openai.OpenAI(base_url=proxy.base_url, api_key=BOT_KEY, max_retries=0)
    assert [m.id for m in bot.models.list().data] == ["maid"]
    web = openai.OpenAI(base_url=proxy.base_url, api_key=WEB_KEY, max_retries=0)
    assert sorted(m.id for m in web.models.list().data) == ["maid", "mini"]
    missing = httpx.get(proxy.url + "/v1/models/nothing", headers={"authorization": f"Bearer {BOT_KEY}"})
    for outside in (httpx.get(proxy.url + "/v1/models/mini", headers={"authorization": f"Bearer {BOT_KEY}"}),
                    chat(proxy.url, BOT_KEY, "mini")):
        assert outside.status_code == 404 and outside.json()["error"]["code"] == "model_not_found"
        # Exactly as for a route that does not exist: a client cannot tell the two apart.
        assert set(outside.json()["error"]) == set(missing.json()["error"])
    responses = httpx.post(proxy.url + "/v1/responses", json={"model": "mini", "input": "hi"},
                           headers={"authorization": f"Bearer {BOT_KEY}"})
    assert responses.status_code == 404
    assert not fake.requests


def test_both_keys_of_a_client_work_and_are_told_apart_by_hash(limited, fake, tmp_path):
    proxy = limited()
    assert chat(proxy.url, BOT_KEY).status_code == 200
    assert chat(proxy.url, BOT_KEY_2).status_code == 200
    assert chat(proxy.url, "bot-key-" + "z" * 24).status_code == 401
    rows = usage_rows(tmp_path, 2)
    assert [r["client"] for r in rows] == ["bot", "bot"]
    assert rows[0]["key_id"] != rows[1]["key_id"] and all(r["key_id"].startswith("key-") for r in rows)


def usage_rows(tmp_path, expected: int) -> list[dict]:
    import sqlite3

    path = tmp_path / "persona-proxy-usage.sqlite3"
    deadline = time.monotonic() + 5
    while True:
        if path.exists():
            try:
                with sqlite3.connect(path) as db:
                    db.row_factory = sqlite3.Row
                    rows = [dict(r) for r in db.execute("SELECT * FROM usage ORDER BY time")]
            except sqlite3.OperationalError:
                rows = []  # the file is there, its table not yet
            if len(rows) >= expected:
                return rows
        assert time.monotonic() < deadline, "usage rows did not arrive"
        time.sleep(0.02)


def test_rpm_answers_429_in_openais_shape_with_its_headers(limited, fake):
    proxy = limited(bot="rpm = 2")
    fresh_minute()
    first = chat(proxy.url, BOT_KEY)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert "x-ratelimit-limit-tokens" not in first.headers  # no tpm: no tokens trio
    assert chat(proxy.url, BOT_KEY).headers["x-ratelimit-remaining-requests"] == "0"
    sdk = openai.OpenAI(base_url=proxy.base_url, api_key=BOT_KEY, max_retries=0)
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.chat.completions.create(model="maid", messages=[{"role": "user", "content": "hi"}])
    error = caught.value
    assert error.code == "rate_limit_exceeded" and error.type == "requests"
    assert "client 'bot'" in error.message and "2 requests per minute (rpm)" in error.message
    assert "resets in" in error.message
    headers = error.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60 and headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-should-retry" not in headers  # a window resets: retrying later is right
    assert len(fake.requests) == 2
    # Another client is not affected, and the refused one's answer named nobody else.
    assert chat(proxy.url, WEB_KEY).status_code == 200
    assert "web" not in error.message


def test_a_spent_budget_is_insufficient_quota_and_tells_the_sdk_not_to_retry(limited, fake):
    # $1000 per 1M tokens: each reply's 5 + 2 tokens cost $0.007, so after two the worst case no longer fits.
    budget = round(worst_case_tokens(10) * 0.001 + 2 * 0.007 - 0.0005, 6)
    proxy = limited(bot=f"budget_usd = {budget}\nbudget_period = \"day\"")
    assert chat(proxy.url, BOT_KEY, max_tokens=10).status_code == 200
    assert chat(proxy.url, BOT_KEY, max_tokens=10).status_code == 200
    refused = chat(proxy.url, BOT_KEY, max_tokens=10)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "insufficient_quota" and error["type"] == "insufficient_quota"
    assert f"${budget:.4g} per day (UTC)" in error["message"] and "budget_usd" in error["message"]
    assert refused.headers["x-should-retry"] == "false"
    assert int(refused.headers["retry-after"]) <= 86_400
    # The SDK with its default retries gives up at once instead of retrying into it.
    sdk = openai.OpenAI(base_url=proxy.base_url, api_key=BOT_KEY, max_retries=3)
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(model="maid", messages=[{"role": "user", "content": "hi"}], max_tokens=10)
    assert time.monotonic() - started < 1.0
    assert len(fake.requests) == 2


def worst_case_tokens(max_tokens: int) -> int:
    """What one 'hi' to the maid reserves: the persona and the message counted, plus its max_tokens."""
    from app.clients.demand import prompt_tokens
    from app.tuning.tokens import load_counter

    counter = load_counter()
    return counter.text(MAID_PROMPT) + prompt_tokens({"messages": [{"role": "user", "content": "hi"}]}, counter) \
        + max_tokens


async def test_fifty_concurrent_requests_against_a_budget_that_fits_ten_admit_ten(limited, fake):
    # $1000 per 1M tokens is $0.001 a token: a budget of ten and a half worst cases.
    budget = 10.5 * worst_case_tokens(60) * 0.001
    proxy = limited(bot=f"budget_usd = {budget}")
    hold = Hold()
    fake.enqueue(*(Reply(body=json.dumps(completion(FT_MODEL)).encode(), hold=hold) for _ in range(50)))
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {BOT_KEY}"},
                                 timeout=20) as client:
        async def one() -> httpx.Response:
            body = {"model": "maid", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 60}
            return await client.post("/v1/chat/completions", json=body)

        tasks = [asyncio.create_task(one()) for _ in range(50)]
        await asyncio.sleep(0.5)
        hold.open()
        answers = await asyncio.gather(*tasks)
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 10 and statuses.count(429) == 40, statuses
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 429} == {"insufficient_quota"}
    assert len(fake.requests) == 10


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_tpm_counts_streams_at_the_usage_the_upstream_reported(limited, fake, api):
    worst = worst_case_tokens(20)
    tpm = worst + 40
    proxy = limited(bot=f"tpm = {tpm}")
    used = 7 if api == "chat" else 12  # what the fake reports: 5 + 2, and 9 + 3 on Responses
    fresh_minute()
    statuses, remaining = [], []
    sdk = openai.OpenAI(base_url=proxy.base_url, api_key=BOT_KEY, max_retries=0)
    for _ in range(12):
        try:
            if api == "chat":
                raw = sdk.chat.completions.with_raw_response.create(
                    model="maid", messages=[{"role": "user", "content": "hi"}], max_tokens=20, stream=True)
            else:
                raw = sdk.responses.with_raw_response.create(model="maid", input="hi", max_output_tokens=20,
                                                             stream=True)
            list(raw.parse())
            statuses.append(200)
            remaining.append(int(raw.headers["x-ratelimit-remaining-tokens"]))
        except openai.RateLimitError as err:
            statuses.append(429)
            assert err.type == "tokens" and f"{tpm} tokens per minute (tpm)" in err.message
    if api == "responses":
        worst = worst_case_tokens(20) - 4  # a bare input string has no message framing
    admitted = (tpm - worst) // used + 1
    assert statuses == [200] * admitted + [429] * (12 - admitted)
    # What is left after each one: the limit less what earlier ones used and this one reserved.
    assert remaining == [tpm - used * i - worst for i in range(admitted)]


def test_per_user_limits_follow_open_webuis_header_which_wins_over_the_body(limited, fake):
    proxy = limited(per_user="rpm = 1")
    def as_user(header: str | None, body_user: str | None) -> int:
        headers = {"authorization": f"Bearer {WEB_KEY}"}
        if header:
            headers["x-openwebui-user-id"] = header
        body = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}
        if body_user:
            body["user"] = body_user
        return httpx.post(proxy.url + "/v1/chat/completions", json=body, headers=headers).status_code

    fresh_minute()
    assert as_user("alice", None) == 200
    assert as_user("alice", "bob") == 429  # the header names alice, whatever the body says
    assert as_user(None, "bob") == 200
    assert as_user(None, "bob") == 429
    assert as_user("carol", "alice") == 200
    refused = httpx.post(proxy.url + "/v1/chat/completions",
                         headers={"authorization": f"Bearer {WEB_KEY}", "x-openwebui-user-id": "alice"},
                         json={"model": "maid", "messages": [{"role": "user", "content": "x"}]})
    message = refused.json()["error"]["message"]
    assert "end user of client 'web'" in message and "per_user.rpm" in message and "alice" not in message
    # No end user at all: only the client's own limits apply (it has none).
    assert all(as_user(None, None) == 200 for _ in range(3))


def test_max_parallel_refuses_while_requests_are_in_flight(limited, fake):
    proxy = limited(bot="max_parallel = 1")
    hold = Hold()
    fake.enqueue(Reply(body=json.dumps(completion(FT_MODEL)).encode(), hold=hold))

    async def run() -> tuple[int, int]:
        async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {BOT_KEY}"},
                                     timeout=10) as client:
            body = {"model": "maid", "messages": [{"role": "user", "content": "hi"}]}
            first = asyncio.create_task(client.post("/v1/chat/completions", json=body))
            await asyncio.sleep(0.3)
            second = await client.post("/v1/chat/completions", json=body)
            hold.open()
            assert second.json()["error"]["code"] == "rate_limit_exceeded"
            assert "at most 1 at once (max_parallel)" in second.json()["error"]["message"]
            return (await first).status_code, second.status_code

    fresh_minute()
    assert asyncio.run(run()) == (200, 429)
    assert chat(proxy.url, BOT_KEY).status_code == 200  # the hold was released when the first ended


def test_limited_clients_get_a_max_tokens_upstream_when_they_send_none(limited, fake):
    proxy = limited(bot="tpm = 100000", routes=ROUTES + "\n[limits]\ndefault_max_tokens = 321\n")
    assert chat(proxy.url, BOT_KEY).status_code == 200
    assert chat(proxy.url, BOT_KEY, max_completion_tokens=50).status_code == 200
    assert chat(proxy.url, WEB_KEY).status_code == 200
    sent = [r.json for r in fake.chat_requests]
    assert sent[0]["max_tokens"] == 321
    assert "max_tokens" not in sent[1] and sent[1]["max_completion_tokens"] == 50
    assert "max_tokens" not in sent[2]  # web has no token or budget limit: its requests are untouched


def test_access_lines_usage_and_metrics_name_the_client(limited, fake, tmp_path, caplog):
    admin = "admin-" + "d" * 24
    proxy = limited(bot="rpm = 1", env={"PERSONA_PROXY_ADMIN_KEYS": admin})
    caplog.set_level(logging.INFO)
    fresh_minute()
    assert chat(proxy.url, BOT_KEY).status_code == 200
    assert chat(proxy.url, BOT_KEY).status_code == 429
    lines = [r for r in caplog.records if getattr(r, "fields", {}).get("route") == "maid"]
    assert lines and lines[0].fields["client"] == "bot" and "client=bot" in lines[0].getMessage()
    refusals = [r for r in caplog.records if r.getMessage().startswith("limited ")]
    assert refusals and "client=bot limit=rpm" in refusals[0].getMessage()
    assert usage_rows(tmp_path, 1)[0]["client"] == "bot"
    metrics = httpx.get(proxy.url + "/metrics", headers={"authorization": f"Bearer {admin}"}).text
    assert 'persona_proxy_limited_total{client="bot",limit="rpm",party="client"} 1.0' in metrics
    assert 'client="bot",kind="chat",route="maid",status="200"' in metrics


def test_a_client_that_hangs_up_mid_stream_is_settled_at_what_was_used(limited, fake):
    proxy = limited(bot="tpm = 100000")
    hold = Hold()
    fake.enqueue(Reply(chunks=[chunk(FT_MODEL, "一"), chunk(FT_MODEL, "二"), hold, chunk(FT_MODEL, "三")]))
    fresh_minute()
    with httpx.stream("POST", proxy.url + "/v1/chat/completions", headers={"authorization": f"Bearer {BOT_KEY}"},
                      json={"model": "maid", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 500,
                            "stream": True}, timeout=10) as answer:
        lines = answer.iter_lines()
        assert next(lines).startswith("data:")
    runtime = proxy.server.server.config.app.state.runtime
    gate = runtime.admission.gate
    deadline = time.monotonic() + 5
    while True:
        state = asyncio.run(gate.states("bot", gate.clients["bot"]))[0]
        if state.in_flight == 0:
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    hold.open()
    # Not the 500-token reservation: the counted prompt and one token per chunk relayed (no usage came).
    assert state.tokens == worst_case_tokens(0) + 2
