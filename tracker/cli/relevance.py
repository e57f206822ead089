"""`tracker train | label | explain | eval | rescore | tune`: the relevance model."""

from __future__ import annotations

import sys

import click

from tracker.cli import echo_json, get_app


@click.command("train")
@click.option("--labels", "label_files", multiple=True, type=click.Path(dir_okay=False),
              help="JSONL file of labelled records (id, title, abstract, categories, label "
                   "2/1/0); repeatable.")
@click.pass_context
def train_command(ctx: click.Context, label_files: tuple[str, ...]) -> None:
    """Train the relevance model from label files, your labels and the seed papers.

    The model is saved at [relevance] model_path; run `tracker rescore` afterwards to
    update stored scores.

    \b
    Example:
      tracker train --labels my_labels.jsonl
      tracker rescore
    """
    from tracker.pipeline import relevance

    report = relevance.train(get_app(ctx), list(label_files))
    parts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report.sources.items() if v)
    click.echo(f"trained {report.version} on {report.n_train} examples "
               f"({report.n_positive} relevant; {parts}); saved to {report.path}")
    click.echo("run `tracker rescore` to update stored scores")


@click.command("label")
@click.argument("item_ids", metavar="ID...", nargs=-1, required=True)
@click.argument("value", type=click.Choice(["relevant", "irrelevant", "clear"]))
@click.pass_context
def label_command(ctx: click.Context, item_ids: tuple[str, ...], value: str) -> None:
    """Mark stored items relevant or irrelevant (or clear the mark); `tracker train` uses
    them. Several ids at once are labelled together: if one is not stored, none is.

    \b
    Example:
      tracker label 2210.08340 relevant
      tracker label 2210.08340 2209.03718 post:12 irrelevant
    """
    from tracker.pipeline import relevance

    for key, result in relevance.label(get_app(ctx, existing=True), list(item_ids), value):
        click.echo(f"{key}: {result}")  # as stored: "2210.08340", not "...v3"


@click.command("explain")
@click.argument("item_id")
@click.option("--top", default=8, show_default=True, type=click.IntRange(1, 1000),
              help="Terms to show each way.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
def explain_command(ctx: click.Context, item_id: str, top: int, fmt: str) -> None:
    """Why an item scores what it does: terms up/down (weight x tf-idf) and keywords.

    \b
    Example:
      tracker explain 2210.08340
    """
    from dataclasses import asdict

    from tracker.pipeline import relevance

    item, why = relevance.explain(get_app(ctx, existing=True), item_id, top)
    if fmt == "json":
        echo_json({"id": item.key, "title": item.title, **asdict(why),
                   "stored_score": item.score, "stored_model": item.score_model})
        return
    click.echo(f"{item.key}  {item.title}")
    click.echo(f"score {why.score:.3f}  (log-odds {why.log_odds:+.2f}, model {why.model_version})")
    if item.score is None or round(item.score, 3) != round(why.score, 3) \
            or item.score_model != why.model_version:
        # search, show and the digest use the stored score until the next rescore
        from tracker.scoring.model import COLD_START_VERSION

        if item.score is None:
            click.echo("  not scored yet (stored before any scoring): `tracker rescore` "
                       "scores it")
        elif why.model_version == COLD_START_VERSION != item.score_model:
            click.echo(f"  stored score {item.score:.3f} ({item.score_model}): that model's "
                       "file is not loaded, so this is cold start's view; fix [relevance] "
                       "model_path or run `tracker train`")
        else:
            click.echo(f"  stored score {item.score:.3f} ({item.score_model}): the model or "
                       "keywords changed since; `tracker rescore` updates it")
    click.echo(f"  base {why.base:+.2f}  categories {why.categories:+.2f}  "
               f"other terms {why.other_terms:+.2f}")
    for title, rows in (("up", why.terms_up), ("down", why.terms_down),
                        ("keywords", why.keywords)):
        text = ", ".join(f"{name} {value:+.2f}" for name, value in rows) or "(none)"
        click.echo(f"  {title}: {text}")


@click.command("eval")
@click.option("--labels", "label_file", required=True, type=click.Path(dir_okay=False),
              help="JSONL file of labelled records (positive = label 2).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.pass_context
def eval_command(ctx: click.Context, label_file: str, fmt: str) -> None:
    """Measure the current model (or cold start) on a labelled file, without training on it.

    \b
    Example:
      tracker eval --labels held_out.jsonl --format json
    """
    from tracker.pipeline import relevance

    metrics = relevance.evaluate_file(get_app(ctx), label_file)
    if fmt == "json":
        echo_json(metrics)
        return
    from tracker.scoring.metrics import WHY_UNDEFINED

    for key, value in metrics.items():
        if value is None:
            shown = f"n/a ({WHY_UNDEFINED[key]})"
        else:
            shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        click.echo(f"{key:18s} {shown}")


@click.command("rescore")
@click.option("--cold-start", is_flag=True,
              help="Without a model file, replace a trained model's scores with cold-start "
                   "ones (refused otherwise).")
@click.pass_context
def rescore_command(ctx: click.Context, cold_start: bool) -> None:
    """Re-score every stored item with the current model and keywords.

    \b
    Example:
      tracker rescore
    """
    from tracker.pipeline import relevance
    from tracker.pipeline.query import count_items

    app = get_app(ctx, existing=True)  # scores of a store that is there, not a new one
    total = count_items(app)
    with click.progressbar(length=total, label="rescoring", file=sys.stderr,
                           hidden=not sys.stderr.isatty()) as bar:
        done, changed = relevance.rescore(app, progress=bar.update, cold_start=cold_start)
    click.echo(f"rescored {done} items ({changed} changed) with "
               f"{relevance.scorer(app).version}")


@click.command("tune")
@click.option("--weeks", default=4, show_default=True, type=click.IntRange(1, 520),
              help="How many past weeks to replay.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
def tune_command(ctx: click.Context, weeks: int, fmt: str) -> None:
    """Backtest a changed config or model: which stored items of the last weeks would enter
    or leave the digest ([digest] min_score, max_items). Writes nothing.

    \b
    Example:
      tracker --config new.toml tune --weeks 8
    """
    from tracker.pipeline import relevance

    changes = relevance.tune(get_app(ctx, existing=True), weeks=weeks)
    if fmt == "json":
        echo_json([{"start": c.start, "end": c.end,
                    "entering": [_row(r) for r in c.entering],
                    "leaving": [_row(r) for r in c.leaving]} for c in changes])
        return
    for change in changes:
        click.echo(f"week {change.start:%Y-%m-%d} .. {change.end:%Y-%m-%d}: "
                   f"{len(change.entering)} enter, {len(change.leaving)} leave")
        for sign, rows in (("+", change.entering), ("-", change.leaving)):
            for item, old, new in rows:
                click.echo(f"  {sign} {item.key:18s} {_fmt(old)} -> {new:.2f}  {item.title[:70]}")


def _fmt(score) -> str:
    return "none" if score is None else f"{score:.2f}"


def _row(row) -> dict:
    item, old, new = row
    return {"id": item.key, "title": item.title, "old_score": old, "new_score": new}


COMMANDS = [train_command, label_command, explain_command, eval_command, rescore_command,
            tune_command]
