"""``persona-proxy eval ROUTE``: does each target still sound like the persona's training data?"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from ..config import Config
from ..evals import html, judge, runner
from ..evals.report import results, table
from ..evals.runner import Prompt, TargetRun, candidate, retired_on
from ..proxy.lifecycle import utc_today
from ..proxy.routing import Route, RouteTable
from ..proxy.runtime import client_for
from ..tuning import fewshot
from ..tuning.fidelity import Profile
from ..tuning.tokens import load_counter
from .common import UserError, load


@click.command("eval")
@click.argument("route_name", metavar="ROUTE")
@click.option("--config", "config_file", metavar="PATH",
              help="Config file (default: $PERSONA_PROXY_CONFIG, else the built-in one).")
@click.option("--dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Training JSONL (default: the few_shot_from file of one of the route's targets).")
@click.option("--prompts", "prompts_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="More prompts: a text file (one per line) or JSONL ({\"prompt\", \"reference\"}).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Prompts at most.")
@click.option("--target", "extra_targets", multiple=True, metavar="MODEL@UPSTREAM",
              help="A candidate not in the config, tried as a fallback with the route's persona (repeatable).")
@click.option("--judge", "judge_spec", metavar="MODEL@UPSTREAM",
              help="Also have this model score each reply 1-5 against the persona (structured output).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--max-cost", type=float, default=0.50, show_default=True,
              help="Ask before spending more than this many USD (estimate from [prices]).")
@click.option("--yes", is_flag=True, help="Do not ask, whatever the estimate.")
@click.option("--json", "as_json", is_flag=True, help="Every reply and score as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML report here (charts and every reply side by side).")
def eval_command(route_name: str, config_file: str | None, dataset: Path | None, prompts_path: Path | None,
                 limit: int, extra_targets: tuple[str, ...], judge_spec: str | None, concurrency: int,
                 max_cost: float, yes: bool, as_json: bool, html_path: Path | None) -> None:
    """Measure how well each target of ROUTE keeps the persona: script, markers, length, closeness, breaks."""
    _needs_measures()
    config = load(config_file)
    route = _route(config, route_name)
    runs = _runs(config, route, extra_targets)
    if judge_spec is not None and judge_spec.rpartition("@")[2] not in config.upstreams:
        raise UserError(f"--judge takes MODEL@UPSTREAM with an upstream of the config, not {judge_spec!r}")
    training_file, prompts = _prompts(route, dataset, prompts_path, limit)
    training = runner.training_replies(training_file)
    settings = route.settings
    profile = Profile.of(training, settings.eval_markers, settings.eval_breaks)
    _cost_first(config, runs, prompts, max_cost, yes)
    done = [0]
    total = len(prompts) * sum(run.status == "ok" for run in runs)

    def progress() -> None:
        done[0] += 1
        if not as_json and sys.stderr.isatty():
            click.echo(f"\r{done[0]}/{total} replies", nl=False, err=True)

    try:
        asyncio.run(runner.run_all(config, route, runs, prompts, concurrency, progress))
        if judge_spec is not None:
            asyncio.run(_judge(config, route, judge_spec, training_file, prompts, runs, concurrency))
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: reporting the {done[0]} replies collected", err=True)
    data = results(route.name, prompts, training, profile, runs)
    if judge_spec is not None:
        data["judge"], data["rubric"] = judge_spec, judge.RUBRIC
    if html_path is not None:
        html_path.write_text(html.render(data), encoding="utf-8")
        click.echo(f"report written to {html_path}", err=True)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"route {route.name}: {len(prompts)} prompts from {training_file}, "
               f"{len(training)} training replies ({profile.script})")
    click.echo("\n".join(table(data)) + (f"\n\njudge {judge_spec}, rubric:\n{judge.RUBRIC}" if judge_spec else ""))


def _prompts(route: Route, dataset: Path | None, extra: Path | None, limit: int) -> tuple[Path, list[Prompt]]:
    """The training file and the prompts: held out from it, then any of the user's own."""
    training_file = dataset or runner.dataset_of(route)
    prompts = runner.held_out(training_file, route.every_target, limit) if training_file else []
    if extra is not None:
        try:
            prompts = [*prompts, *runner.prompts_file(extra)][:limit]
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if training_file is None or not prompts:
        raise UserError(f"route {route.name}: no training data to compare with; pass --dataset FILE.jsonl "
                        "(and --prompts FILE for prompts of your own)")
    return training_file, prompts


async def _judge(config: Config, route: Route, spec: str, training_file: Path, prompts: list[Prompt],
                 runs: list[TargetRun], concurrency: int) -> None:
    model, _, upstream = spec.rpartition("@")
    if not model or upstream not in config.upstreams:
        raise UserError(f"--judge takes MODEL@UPSTREAM with an upstream of the config, not {spec!r}")
    asked = {p.text for p in prompts}
    examples = [Prompt(u, r) for u, r in fewshot.exchanges(training_file) if u not in asked][:2]
    client = client_for(config, upstream)
    try:
        await judge.judge_all(client, model, route.settings.system_prompt or "", examples, prompts,
                              [r for r in runs if r.status == "ok"], concurrency)
    finally:
        await client.aclose()


def _needs_measures() -> None:
    try:
        import hanzidentifier  # noqa: F401
        import sacrebleu  # noqa: F401
    except ImportError:
        raise UserError("eval measures scripts and chrF with hanzidentifier and sacrebleu: install them with pip "
                        "install 'persona-proxy[eval]' (from a checkout: .venv/bin/pip install '.[eval]')") from None


def _route(config: Config, name: str) -> Route:
    routes = RouteTable.from_config(config)
    route = next((r for r in routes if r.name == name), None)
    if route is None:
        raise UserError(f"no route '{name}' in the config (have: {', '.join(r.name for r in routes)})")
    return route


def _runs(config: Config, route: Route, extra: tuple[str, ...]) -> list[TargetRun]:
    runs = []
    # Canaries and shadows are candidates the route already names: scored beside its own targets.
    for target in route.every_target:
        run = TargetRun(target.name, target, candidate=target.role in ("canary", "shadow"))
        if retired_on(target, utc_today()):
            run.status, run.note = "retired", f"shut down on {target.shutdown_date}"
        runs.append(run)
    for spec in extra:
        try:
            target = candidate(route, spec, len(runs))
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if target.upstream not in config.upstreams:
            raise UserError(f"--target {spec}: no [upstreams.{target.upstream}] in the config")
        runs.append(TargetRun(spec, target, candidate=True))
    return runs


def _cost_first(config: Config, runs: list[TargetRun], prompts: list[Prompt], max_cost: float, yes: bool) -> None:
    """Print requests, tokens and cost per target before sending anything; ask above --max-cost."""
    counter = load_counter()
    total = 0.0
    for run in runs:
        if run.status != "ok":
            click.echo(f"{run.label}: {run.status} ({run.note}); not asked", err=True)
            continue
        target = run.target
        shots = fewshot.cost(list(target.few_shot), counter) if target.few_shot else 0
        persona = counter.text(target.prompt or "")
        tokens_in = sum(persona + shots + counter.text(p.text) + 8 for p in prompts)
        tokens_out = 150 * len(prompts)  # a persona's reply is short; the estimate errs high
        price = config.prices.get(target.model)
        cost = None if price is None else (tokens_in * price.input + tokens_out * price.output) / 1e6
        total += cost or 0.0
        shown = "no price in [prices]" if cost is None else f"~${cost:.4f}"
        click.echo(f"{run.label}: {len(prompts)} requests, ~{tokens_in:,} tokens in, ~{tokens_out:,} out, {shown}",
                   err=True)
    if total > max_cost and not yes and not click.confirm(
            f"Estimated ${total:.2f} is above --max-cost ${max_cost:.2f}. Go ahead?", err=True):
        raise UserError("not sent; raise --max-cost or pass --yes")
