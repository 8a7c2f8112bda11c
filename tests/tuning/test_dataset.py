"""The dataset check: every format rule, the warnings, statistics, output and exit codes."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from click.testing import CliRunner

from app.cli.main import cli
from app.tuning.dataset import check_dataset, example_problems
from app.tuning.report import default_epochs, render, summary
from app.tuning.tokens import _estimate, load_counter

from ..conftest import DATA, REPO, SHARED_DATASET

MODEL = "gpt-4o-mini-2024-07-18"
MAID_PROMPT = "你是一個可愛的女僕機器人，用繁體中文回答主人的問題。"


@pytest.fixture(scope="module")
def counter():
    return load_counter()


def check(name: str, counter, model: str | None = MODEL) -> dict:
    return summary(check_dataset(DATA / name, counter, model), model)


def lines_of(result: dict, kind: str) -> list[int | None]:
    return [f["line"] for f in result["errors"] + result["warnings"] if f["kind"] == kind]


def test_valid_file(counter):
    result = check("valid.jsonl", counter)
    assert result["valid"] and result["examples"] == 12
    assert result["errors"] == [] and result["warnings"] == []
    assert result["tokens"]["exact"] and result["tokens"]["counted_with"] == "tiktoken o200k_base"
    assert result["system_prompts"]["dominant"] == MAID_PROMPT


def test_every_format_rule_is_reported_with_its_line(counter):
    result = check("format_errors.jsonl", counter)
    assert not result["valid"]
    expected = {
        "invalid_json": [11], "not_object": [12], "missing_messages": [13], "unknown_example_key": [13, 13],
        "no_assistant_message": [14], "missing_role": [15], "unknown_role": [16], "unknown_message_key": [17],
        "content_not_string": [18, 22], "missing_content": [19], "bad_weight": [20, 21],
        "bad_tool_calls": [23], "bad_tools": [24], "missing_tool_call_id": [25],
    }
    for kind, lines in expected.items():
        assert lines_of(result, kind) == lines, kind
    messages = {f["line"]: f["message"] for f in result["errors"]}
    assert messages[16] == "message 0: unrecognized role 'wizard'"
    assert messages[21] == "message 1: 'weight' must be 0 or 1"


def test_tools_tool_calls_and_weights_that_follow_the_rules_pass(counter):
    result = check("tools_valid.jsonl", counter)
    assert result["valid"], result["errors"]


def test_fewer_than_ten_examples_is_rejected(counter):
    result = check("too_few.jsonl", counter)
    assert not result["valid"]
    assert result["error_counts"] == {"too_few_examples": 1}


def test_warnings_the_provider_would_not_give(counter):
    result = check("warnings.jsonl", counter)
    assert result["valid"]
    assert lines_of(result, "duplicate") == [13]
    assert lines_of(result, "near_duplicate") == [14]
    assert lines_of(result, "empty_reply") == [15]
    assert lines_of(result, "short_reply") == [16]
    assert lines_of(result, "long_reply") == [17]
    assert result["system_prompts"] == {"distinct": 2, "dominant": MAID_PROMPT, "dominant_count": 17, "missing": 1}
    assert "inconsistent_system_prompts" in result["warning_counts"]
    assert "missing_system_prompt" in result["warning_counts"]


def test_file_layout_warnings(counter):
    result = check("layout.jsonl", counter)
    assert result["valid"] and result["examples"] == 12
    assert set(result["warning_counts"]) == {"bom", "blank_line", "trailing_blank_lines", "mixed_line_endings"}
    assert lines_of(result, "blank_line") == [7]


def test_examples_over_the_token_limit(counter):
    result = check("huge.jsonl", counter)
    assert lines_of(result, "too_many_tokens") == [11]
    assert result["tokens"]["max"] > 65_536


def test_statistics_and_training_estimate(counter):
    result = check("valid.jsonl", counter)
    tokens = result["tokens"]
    assert tokens["min"] <= tokens["median"] <= tokens["max"]
    assert tokens["total"] == sum(check_dataset(DATA / "valid.jsonl", counter).example_tokens)
    # 12 examples: 3 epochs would train on 36 < 100, so the default is ceil(100 / 12) = 9.
    assert result["training"]["epochs"] == 9
    assert result["training"]["billed_tokens"] == 9 * tokens["total"]
    assert result["training"]["estimated_cost_usd"] == round(9 * tokens["total"] * 3.0 / 1e6, 2)
    assert check("valid.jsonl", counter, model="some-other-model")["training"]["estimated_cost_usd"] is None


@pytest.mark.parametrize(("examples", "epochs"), [(1, 25), (12, 9), (34, 3), (100, 3), (8333, 3), (8334, 2),
                                                  (8400, 2), (30000, 1)])
def test_default_epochs(examples, epochs):
    assert default_epochs(examples) == epochs


def test_without_the_vocabulary_counts_are_a_labelled_estimate():
    counter = _estimate("no vocabulary")
    result = summary(check_dataset(DATA / "valid.jsonl", counter), MODEL)
    assert not result["tokens"]["exact"]
    assert result["tokens"]["counted_with"].startswith("ESTIMATE")
    assert result["tokens"]["total"] > 0


def test_cli_exit_codes_json_and_text():
    runner = CliRunner()
    ok = runner.invoke(cli, ["dataset", "check", str(DATA / "valid.jsonl"), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["valid"] is True
    bad = runner.invoke(cli, ["dataset", "check", str(DATA / "format_errors.jsonl")])
    assert bad.exit_code == 1
    assert "ERROR line 16: message 0: unrecognized role 'wizard'" in bad.output
    assert "REJECTED" in bad.output
    missing = runner.invoke(cli, ["dataset", "check", "nope.jsonl"])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_large_files_are_streamed(tmp_path):
    example = json.dumps({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "q"},
                                       {"role": "assistant", "content": "長" * 20000}]}, ensure_ascii=False)
    path = tmp_path / "big.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(100):
            fh.write(example.replace('"q"', f'"q{i}"') + "\n")
    size = path.stat().st_size
    tracemalloc.start()
    report = check_dataset(path, _estimate("test"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert report.examples == 100 and size > 6_000_000
    # One line at a time plus a few hashes per example: a small fraction of the file.
    assert peak < size / 5


@pytest.mark.skipif(not SHARED_DATASET.exists(), reason="../shared/data is not beside this checkout")
def test_the_reference_maid_dataset(counter):
    result = summary(check_dataset(SHARED_DATASET, counter, MODEL), MODEL)
    assert result["valid"] and result["examples"] == 102
    assert result["warning_counts"].get("duplicate") == 13
    assert result["system_prompts"]["dominant"] == MAID_PROMPT


def test_example_problems_unit():
    assert example_problems({"messages": [{"role": "user", "content": "a"},
                                          {"role": "assistant", "content": "b"}]}) == []
    assert ("missing_messages", "missing 'messages' list") in example_problems({"messages": []})


def test_exact_counts_are_part_of_the_default_install():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    needed = {dep.split(">")[0].split("[")[0] for dep in project["dependencies"]}
    assert {"tiktoken", "bpe-openai"} <= needed  # not behind an extra
    counter = load_counter()
    assert counter.exact and counter.source == "tiktoken o200k_base"


def test_the_summary_counts_duplicates_and_notes_an_unpriced_model():
    data = summary(check_dataset(DATA / "warnings.jsonl", load_counter()), "gpt-9-nano")
    assert data["duplicates"]["exact"] >= 1 and data["training"]["price_known"] is False
    text = render(data)
    assert f"duplicates          {data['duplicates']['exact']} exact," in text
    assert "no training price known for 'gpt-9-nano'" in text
    assert "no training price" not in render(summary(check_dataset(DATA / "valid.jsonl", load_counter()), MODEL))
