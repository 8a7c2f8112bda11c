"""``persona-proxy finetune ...``: from a checked dataset to a fine-tuned model and its route."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..config import Config
from ..proxy.lifecycle import utc_today
from ..tuning.dataset import check_dataset
from ..tuning.finetune import FineTuneError, FineTuningAPI, Unreachable, Update, follow
from ..tuning.report import render, summary
from ..tuning.tokens import load_counter
from .common import UserError, load
from .common import config_path as resolve_config_path
from .dataset import dominant_prompt
from .route import write_route

CONFIG_OPTION = click.option("--config", "config_file", metavar="PATH",
                             help="Config file (default: $PERSONA_PROXY_CONFIG, else the built-in one).")
UPSTREAM_OPTION = click.option(
    "--upstream", help="Which [upstreams.NAME] to use (default: the only OpenAI-compatible one, else openai).")
POLL_OPTION = click.option("--poll-interval", type=float, default=10.0, show_default=True, hidden=True)


@click.group()
def finetune() -> None:
    """Launch and follow fine-tuning jobs on an upstream."""


def default_upstream(config: Config, name: str | None) -> str:
    """``--upstream`` as given; else the config's only OpenAI-compatible upstream; else ``openai``."""
    if name:
        return name
    candidates = [n for n, u in config.upstreams.items() if u.kind == "openai"]
    return candidates[0] if len(candidates) == 1 else "openai"


def _api(config: Config, name: str | None) -> FineTuningAPI:
    name = default_upstream(config, name)
    settings = config.upstreams.get(name)
    if settings is None or settings.kind != "openai" or not settings.base_url:
        known = ", ".join(n for n, u in config.upstreams.items() if u.kind == "openai") or "none"
        raise UserError(f"no OpenAI-compatible upstream '{name}' in the config (have: {known}); use --upstream")
    upstream = config.upstream(name)
    if upstream.key_missing:
        raise UserError(f"upstream '{name}' needs its key: set the {settings.api_key_env} environment variable")
    key = upstream.api_key.get_secret_value() if upstream.api_key else None
    return FineTuningAPI(settings.base_url, key, connect_timeout=settings.connect_timeout)


def _checked(path: Path, model: str) -> None:
    data = summary(check_dataset(path, load_counter(), model), model)
    click.echo(render(data))
    if not data["valid"]:
        raise UserError(f"{path} would be rejected; fix the errors above first")


@finetune.command("start")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", required=True, metavar="BASE", help="Base model, e.g. gpt-4o-mini-2024-07-18.")
@click.option("--suffix", help="Up to 64 characters added to the fine-tuned model's name.")
@click.option("--epochs", type=click.IntRange(1, 50), help="Training epochs (default: the provider's choice).")
@click.option("--validation-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--route", "route_name", metavar="NAME", help="On success, point route NAME at the new model.")
@click.option("--no-follow", is_flag=True, help="Start the job and return at once.")
@UPSTREAM_OPTION
@CONFIG_OPTION
@POLL_OPTION
def start(file: Path, model: str, suffix: str | None, epochs: int | None, validation_file: Path | None,
          route_name: str | None, no_follow: bool, upstream: str | None, config_file: str | None,
          poll_interval: float) -> None:
    """Check FILE, upload it, start a fine-tuning job on MODEL and follow it."""
    config = load(config_file)
    api = _api(config, upstream)
    _still_open(config, upstream)
    _checked(file, model)
    if validation_file is not None:
        _checked(validation_file, model)
    with _provider_errors(config, upstream):
        training_id = api.upload(file)
        validation_id = api.upload(validation_file) if validation_file else None
        job = api.create_job(model, training_id, validation_file=validation_id, suffix=suffix, epochs=epochs)
    click.echo(f"Started {job['id']} on {model} (training file {training_id}).")
    if no_follow:
        click.echo(f"Follow it with: persona-proxy finetune follow {job['id']}")
        return
    _follow(api, config, job["id"], poll_interval, route_name, file, upstream)


def _still_open(config: Config, upstream: str | None) -> None:
    """Refuse, before anything is uploaded, a job the provider no longer accepts."""
    name = default_upstream(config, upstream)
    cutoff = config.upstreams[name].fine_tuning_cutoff
    today = utc_today()
    if cutoff is None or today < cutoff:
        return
    if today == cutoff:
        click.echo(f"warning: today ({cutoff}) is the last day upstream {name} accepts new fine-tuning jobs",
                   err=True)
        return
    raise UserError(f"upstream {name} stopped accepting new fine-tuning jobs after {cutoff} "
                    f"(fine_tuning_until); nothing was uploaded. Keep the persona on a base model with few-shot, "
                    "another provider or an open-weight model: see `persona-proxy eval`, `succession` and "
                    "`route promote`")


@finetune.command("follow")
@click.argument("job_id")
@click.option("--route", "route_name", metavar="NAME", help="On success, point route NAME at the new model.")
@click.option("--system-prompt-from", "prompt_from", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="DATASET", help="With --route: the dataset whose system prompt the route uses.")
@UPSTREAM_OPTION
@CONFIG_OPTION
@POLL_OPTION
def follow_command(job_id: str, route_name: str | None, prompt_from: Path | None, upstream: str | None,
                   config_file: str | None, poll_interval: float) -> None:
    """Show a job's progress until it ends (Ctrl-C detaches; the job keeps running)."""
    config = load(config_file)
    _follow(_api(config, upstream), config, job_id, poll_interval, route_name, prompt_from, upstream)


@finetune.command("list")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the provider's job objects as JSON.")
@UPSTREAM_OPTION
@CONFIG_OPTION
def list_jobs(limit: int, as_json: bool, upstream: str | None, config_file: str | None) -> None:
    """List recent fine-tuning jobs."""
    config = load(config_file)
    with _provider_errors(config, upstream):
        jobs = _api(config, upstream).jobs(limit)
    if as_json:
        click.echo(json.dumps(jobs, indent=2, ensure_ascii=False))
        return
    for job in jobs:
        click.echo(f"{job['id']}  {job.get('status', '?'):<16} {job.get('model', '')}  "
                   f"{job.get('fine_tuned_model') or ''}")
    if not jobs:
        click.echo("No fine-tuning jobs.")


@finetune.command("cancel")
@click.argument("job_id")
@UPSTREAM_OPTION
@CONFIG_OPTION
def cancel(job_id: str, upstream: str | None, config_file: str | None) -> None:
    """Cancel a running fine-tuning job."""
    config = load(config_file)
    with _provider_errors(config, upstream):
        job = _api(config, upstream).cancel(job_id)
    click.echo(f"{job['id']}: {job.get('status')}")


def _follow(api: FineTuningAPI, config: Config, job_id: str, poll_interval: float, route_name: str | None,
            dataset: Path | None, upstream: str | None) -> None:
    display = _Display(sys.stdout.isatty())
    job: dict[str, Any] = {}
    try:
        with _provider_errors(config, upstream):
            for update, state in follow(api, job_id, poll_interval=poll_interval):
                display.show(update)
                job = state
    except KeyboardInterrupt:
        display.end_line()
        click.echo(f"\nDetached from {job_id}; it keeps running. Follow it again with:\n"
                   f"  persona-proxy finetune follow {job_id}")
        return
    display.end_line()
    _finished(job, config, route_name, dataset, upstream)


def _finished(job: dict[str, Any], config: Config, route_name: str | None, dataset: Path | None,
              upstream: str | None) -> None:
    status = job.get("status")
    if status == "succeeded":
        model = job.get("fine_tuned_model")
        click.echo(f"Fine-tuned model: {model}")
        if route_name and model:
            values = {"upstream": default_upstream(config, upstream), "model": str(model)}
            if dataset is not None:
                values["system_prompt"] = dominant_prompt(dataset)
            path = resolve_config_path(None) if config.source is None else config.source
            if path is None:
                raise UserError("--route needs a config file to edit: pass --config")
            created = write_route(path, route_name, values)
            click.echo(f"{'Added' if created else 'Updated'} route '{route_name}' in {path}.")
        return
    error = job.get("error") or {}
    message = error.get("message") or f"the job ended as '{status}'"
    raise UserError(f"{job.get('id')} {status}: {message}\n{hint(error.get('code'), None, message)}")


class _Display:
    """Status lines, provider messages, and one progress line per 10% (or in place on a terminal)."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.open_line = False
        self.last_decile = -1

    def show(self, update: Update) -> None:
        if update.status_changed:
            self.echo(f"status: {update.status}")
        for message in update.messages:
            self.echo(message)
        if update.new_metrics and update.step and update.total_steps:
            decile = 10 * update.step // update.total_steps
            if self.tty or decile != self.last_decile:
                self.last_decile = decile
                self.bar(update)

    def bar(self, update: Update) -> None:
        assert update.step is not None and update.total_steps is not None
        filled = 30 * update.step // update.total_steps
        loss = f"  loss {update.train_loss:.4f}" if update.train_loss is not None else ""
        text = f"[{'#' * filled}{'-' * (30 - filled)}] step {update.step}/{update.total_steps}{loss}"
        if self.tty:
            click.echo("\r" + text, nl=False)
            self.open_line = True
        else:
            click.echo(text)

    def echo(self, text: str) -> None:
        self.end_line()
        click.echo(text)

    def end_line(self) -> None:
        if self.open_line:
            click.echo()
            self.open_line = False


class _provider_errors:
    """Turns a provider's refusal into its own words plus what to do next."""

    def __init__(self, config: Config, upstream: str | None) -> None:
        self.name = default_upstream(config, upstream)
        settings = config.upstreams.get(self.name)
        self.key_env = settings.api_key_env if settings else None

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, Unreachable):
            raise UserError(f"upstream '{self.name}': {exc.message}; check its base_url and your network")
        if isinstance(exc, FineTuneError):
            next_step = hint(exc.code, exc.status, exc.message, self.key_env)
            raise UserError(f"the provider said: {exc.message}\n{next_step}")


def hint(code: str | None, status: int | None, message: str, key_env: str | None = None) -> str:
    """What to do next, by the provider's error code, status or wording."""
    text = message.lower()
    if code in ("invalid_n_examples", "invalid_training_file", "invalid_file_format") or "example" in text:
        return "Next: run `persona-proxy dataset check FILE` and fix what it reports."
    if status == 401:
        return f"Next: the provider rejected the key; check {key_env or 'the upstream api_key_env variable'}."
    if code == "insufficient_quota" or status == 429:
        return "Next: check the account's quota and billing with the provider, or retry later."
    if "no longer" in text or "not available" in text or "not allowed" in text or status == 403:
        return ("Next: this provider no longer accepts new fine-tuning jobs for this account. Keep the persona "
                "alive on a current base model: `persona-proxy route add NAME --model BASE "
                "--system-prompt-from DATASET`.")
    if code == "model_not_found" or status == 404:
        return "Next: check --model: the provider cannot fine-tune that model (or the job id is wrong)."
    return "Next: see the provider's message above."
