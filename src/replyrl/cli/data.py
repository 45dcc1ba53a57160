"""CLI: `replyrl data validate|import|stats|split|pairs|synth` (DESIGN §2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.table import Table
from rich.text import Text

from replyrl.cli.common import console, err_console, user_errors
from replyrl.errors import InputError

data_app = typer.Typer(
    help="Validate, import, label, split and pair engagement data.", no_args_is_help=True
)
LABEL_KINDS = ("ratio", "log", "residual", "rank")


def _say(msg: str, style: str | None = None) -> None:
    """One plain message line (no markup: paths may hold brackets), never wrapped."""
    console.print(Text(msg, style=style or ""), highlight=False, soft_wrap=True)


def _default_rejects(path: Path) -> Path:
    # beside the working folder, not the input: input data often lives in a read-only place
    return Path.cwd() / f"{path.name.removesuffix('.gz')}.rejects"


def _report_load(
    res, path: Path, skip_invalid: bool, rejects: Path | None, shown: int = 10
) -> None:
    """Print the load counts, the first errors, and write the rejects file when asked."""
    from replyrl.records import write_rejects

    _say(str(path), "bold")
    t = Table(show_header=False)
    for k, v in (
        ("rows", res.n_rows),
        ("valid", res.n_rows - len(res.rejected_lines)),
        ("rejected", len(res.rejected_lines)),
        ("row errors", len(res.errors)),
        ("duplicates removed", res.duplicates),
        ("records kept", len(res.records)),
    ):
        t.add_row(k, f"{v:,}")
    console.print(t)
    _say(
        f"{res.n_rows - len(res.rejected_lines):,} valid records, "
        f"{len(res.rejected_lines):,} rejected; {res.duplicates:,} duplicate "
        f"(tweet_id, reply) rows removed -> {len(res.records):,} kept"
    )
    for e in res.errors[:shown]:
        err_console.print(f"  {e}", highlight=False, markup=False, soft_wrap=True)
    if len(res.errors) > shown:
        err_console.print(f"  ... and {len(res.errors) - shown} more")
    if skip_invalid and res.rejected_lines:
        out = write_rejects(rejects or _default_rejects(path), res.rejected_lines)
        _say(f"wrote {len(res.rejected_lines)} rejected line(s) verbatim to {out}")


def _load(path: Path, skip_invalid: bool):
    from replyrl.records import load_records

    return load_records(path, skip_invalid=skip_invalid)


@data_app.command("validate")
def validate(
    file: Path = typer.Argument(..., help="Records file: JSONL, JSONL.gz or CSV."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Keep going past bad rows and write them to a rejects file."
    ),
    rejects: Path = typer.Option(None, "--rejects", help="Rejects file [./<file>.rejects]."),
) -> None:
    """Check every row against the record schema; exit 2 with the errors unless --skip-invalid."""
    with user_errors():
        res = _load(file, skip_invalid)
        _report_load(res, file, skip_invalid, rejects)
    if not res.records:
        err_console.print("[bold red]error:[/] no valid records left")
        raise typer.Exit(2)


@data_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="The export to convert."),
    out: Path = typer.Option(..., "--out", help="Records JSONL to write."),
    fmt: str = typer.Option(..., "--format", help="xapi (X API v2 JSON/JSONL) or csv."),
    mapping: list[str] = typer.Option(
        None, "--map", help="CSV column mapping source_col=field (repeatable)."
    ),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Keep going past bad rows."),
    rejects: Path = typer.Option(None, "--rejects", help="Rejects file [./<file>.rejects]."),
) -> None:
    """Convert an X API v2 or CSV export into validated records."""
    from replyrl.data.importers import import_csv, import_xapi, parse_mapping
    from replyrl.records import write_records

    with user_errors():
        if fmt == "xapi":
            if mapping:
                raise InputError("--map applies to --format csv only")
            imp = import_xapi(file, skip_invalid=skip_invalid)
        elif fmt == "csv":
            imp = import_csv(file, parse_mapping(mapping or []), skip_invalid=skip_invalid)
        else:
            raise InputError(f"--format must be xapi or csv, got {fmt!r}")
        _report_load(imp.result, file, skip_invalid, rejects)
        for reason, n in sorted(imp.skipped.items()):
            _say(f"skipped {n:,}: {reason}")
        write_records(out, imp.result.records)
        _say(f"wrote {len(imp.result.records):,} records to {out}")


@data_app.command("stats")
def stats(
    file: Path = typer.Argument(..., help="Records file."),
    label: str = typer.Option("residual", "--label", help=f"Label kind: {', '.join(LABEL_KINDS)}."),
    seed: int = typer.Option(0, help="Split seed: the label is fitted on the sft+rl split only."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Ignore bad rows (counted)."),
) -> None:
    """Records, tweets, replies per tweet, engagement distribution, and what context explains."""
    from replyrl.data.labels import base_label, engagement_raw, fit_labeler
    from replyrl.data.splits import SplitConfig, split_records

    with user_errors():
        if label not in LABEL_KINDS:
            raise InputError(f"--label must be one of {', '.join(LABEL_KINDS)}, got {label!r}")
        res = _load(file, skip_invalid)
    recs = res.records
    if not recs:
        err_console.print("[bold red]error:[/] no valid records")
        raise typer.Exit(2)
    per_tweet = np.unique([r.tweet_id for r in recs], return_counts=True)[1]
    eng = np.array([engagement_raw(r) for r in recs], dtype=float)
    _say(str(file), "bold")
    t = Table(show_header=False)
    t.add_row(
        "records",
        f"{len(recs):,}  (rows {res.n_rows:,}, "
        f"rejected {len(res.rejected_lines):,}, "
        f"duplicates removed {res.duplicates:,})",
    )
    t.add_row("tweets", f"{len(per_tweet):,}")
    t.add_row(
        "replies/tweet",
        f"mean {per_tweet.mean():.2f}  median {np.median(per_tweet):g}  "
        f"min {per_tweet.min()}  max {per_tweet.max()}",
    )
    qs = np.percentile(eng, [25, 50, 75, 90, 99])
    t.add_row(
        "engagement (likes+2·RT)",
        f"mean {eng.mean():.2f}  p25 {qs[0]:g}  p50 {qs[1]:g}  "
        f"p75 {qs[2]:g}  p90 {qs[3]:g}  p99 {qs[4]:g}  max {eng.max():g}  "
        f"zero {np.mean(eng == 0):.1%}",
    )
    t.add_row("tweet_likes > 0", f"{np.mean([r.tweet_likes > 0 for r in recs]):.1%}")
    for f in ("reply_author_followers", "reply_time_diff_seconds"):
        t.add_row(f"{f} known", f"{np.mean([getattr(r, f) is not None for r in recs]):.1%}")
    splits = split_records(recs, SplitConfig(seed=seed))
    train = splits["sft"] + splits["rl"]
    held = splits["gold"] + splits["test"]
    lab = fit_labeler(train, label)
    s = lab.summary()
    t.add_row(f"label '{label}' fitted on", f"sft+rl split: {s['n_train']:,} records (seed {seed})")
    t.add_row("context features", ", ".join(s["features"]) or "none")
    if s["dropped_features"]:
        t.add_row("dropped (constant/absent)", ", ".join(s["dropped_features"]))
    t.add_row(
        "variance explained by context",
        f"{s['context_r2']:.1%} on train; "
        f"{_heldout_r2(lab, held, base_label(held, label)):.1%} on held-out gold+test",
    )
    t.add_row("left for the text", f"{s['text_share']:.1%}")
    y = lab.transform(recs)
    t.add_row(
        "label distribution",
        f"mean {y.mean():.3f}  std {y.std():.3f}  min {y.min():.3f}  max {y.max():.3f}",
    )
    console.print(t)


def _heldout_r2(lab, held, y) -> float:
    if len(held) < 2 or np.var(y) == 0:
        return float("nan")
    pred = lab.context_prediction(held)
    return 1.0 - float(np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))


@data_app.command("split")
def split(
    file: Path = typer.Argument(..., help="Records file."),
    out: Path = typer.Option(..., "--out", help="Folder for <split>.jsonl + manifest.json."),
    seed: int = typer.Option(0, help="Split seed."),
    sft: float = typer.Option(0.4, help="Fraction of tweets for SFT."),
    rl: float = typer.Option(0.3, help="Fraction of tweets for RL."),
    gold: float = typer.Option(0.15, help="Fraction of tweets for the gold reward model."),
    test: float = typer.Option(0.15, help="Fraction of tweets for evaluation."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Ignore bad rows (counted)."),
) -> None:
    """Split by tweet, stratified by engagement quartile; print counts and quartile mix."""
    from replyrl.data.splits import SplitConfig, split_records, split_stats, write_splits

    with user_errors():
        cfg = SplitConfig(seed=seed, sft=sft, rl=rl, gold=gold, test=test)
        res = _load(file, skip_invalid)
        splits = split_records(res.records, cfg)
        write_splits(out, splits, cfg)
    _say(f"splits of {file} (seed {seed}) -> {out}", "bold")
    t = Table()
    for c in ("split", "records", "tweets", "Q1 (quiet)", "Q2", "Q3", "Q4 (viral)"):
        t.add_column(c, justify="right")
    for name, st in split_stats(splits).items():
        t.add_row(
            name,
            f"{st['records']:,}",
            f"{st['tweets']:,}",
            *(
                f"{100 * p:.1f}/{100 * r:.1f}"
                for p, r in zip(st["quartile_proportions"], st["record_quartile_proportions"])
            ),
        )
    console.print(t)
    _say("Q1-Q4: engagement quartile shares in %, of the split's tweets / of its records")


@data_app.command("pairs")
def pairs(
    file: Path = typer.Argument(..., help="Records file."),
    out: Path = typer.Option(..., "--out", help="Pairs JSONL to write."),
    ratio: float = typer.Option(2.0, help="Chosen score >= ratio x max(rejected score, 1)."),
    max_per_tweet: int = typer.Option(8, "--max-per-tweet", min=1, help="Cap of pairs per tweet."),
    seed: int = typer.Option(0, help="Seed of the per-tweet sample under the cap."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Ignore bad rows (counted)."),
) -> None:
    """Engagement-ranked preference pairs (SHP rules: ratio, later reply wins, cap per tweet)."""
    from replyrl.data.pairs import preference_pairs, write_pairs

    with user_errors():
        res = _load(file, skip_invalid)
        ps = preference_pairs(
            res.records, ratio=ratio, max_pairs_per_tweet=max_per_tweet, seed=seed
        )
        write_pairs(out, ps)
    n_tweets = len({p.tweet_id for p in ps})
    margin = np.mean([p.margin for p in ps]) if ps else float("nan")
    _say(
        f"wrote {len(ps):,} pairs from {n_tweets:,} of "
        f"{len({r.tweet_id for r in res.records}):,} tweets to {out} "
        f"(mean margin {margin:.3f})"
    )


@data_app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", help="Records JSONL to write."),
    tweets: int = typer.Option(100, "--tweets", min=1, help="Number of tweets (4-6 replies each)."),
    seed: int = typer.Option(0, help="Generator seed."),
) -> None:
    """Write the SYNTHETIC sample: template replies with likes from a simulated audience."""
    from replyrl.data.synth import synthesize
    from replyrl.records import write_records

    with user_errors():
        with console.status("scoring replies with the simulated audience..."):
            recs = synthesize(n_tweets=tweets, seed=seed)
        write_records(out, recs)
    _say(f"wrote {len(recs):,} synthetic records ({tweets} tweets, seed {seed}) to {out}")


def register(app: typer.Typer) -> None:
    """Add the `data` command group to the main app."""
    app.add_typer(data_app, name="data")
