"""``persona-proxy succession ROUTE``: which of a route's targets is ready to take over, from live traffic."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..evals import runner
from ..evals.succession import read_rows, report
from ..evals.succession_view import render, table
from ..ops.usage import since_epoch
from ..tuning.fidelity import Profile, reference_scores
from .common import UserError, load
from .eval import _route
from .usage import read_records


@click.command("succession")
@click.argument("route_name", metavar="ROUTE")
@click.option("--since", default="7d", show_default=True, help="7d, 12h, 30m or a date (2026-11-01).")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML report here, with live fidelity per day as a chart.")
@click.option("--config", "config_file", metavar="PATH",
              help="Config file (default: $PERSONA_PROXY_CONFIG, else the built-in one).")
def succession_command(route_name: str, since: str, as_json: bool, html_path: Path | None,
                       config_file: str | None) -> None:
    """Compare every target that served or shadowed ROUTE: traffic, errors, latency, cost and live fidelity.

    The training data (the route's dataset) is the reference column. Names the best candidate and whether
    it is ahead of or behind the primary, with the number of replies behind every figure.
    """
    config = load(config_file)
    route = _route(config, route_name)
    try:
        start = since_epoch(since)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    usage, fidelity = read_records(config, lambda store: read_rows(store, route.name, start))
    dataset = runner.dataset_of(route)
    profile = reference = None
    if dataset is not None:
        training = runner.training_replies(dataset)
        profile = Profile.of(training, route.settings.eval_markers, route.settings.eval_breaks)
        reference = reference_scores(training, profile)
    data = report(route.name, since, usage, fidelity, profile, reference, config.prices)
    if html_path is not None:
        html_path.write_text(render(data), encoding="utf-8")
        click.echo(f"report written to {html_path}", err=True)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    source = f"training data {dataset}" if dataset else "no dataset on the route: live fidelity is not measured"
    click.echo(f"route {route.name} since {since}: {len(data['targets'])} target(s); {source}")
    if data["targets"]:
        click.echo("\n".join(table(data)))
    click.echo(f"\n{data['verdict']}")
