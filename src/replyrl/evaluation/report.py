"""Render the summary as report.md and a self-contained report.html (plots as base64 PNG).

Both files come from one list of blocks (headings, paragraphs, tables, images), so they always
say the same thing; the HTML embeds every image, so it can be mailed or opened offline.
"""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

from replyrl.evaluation import plots
from replyrl.evaluation.summary import METRICS
from replyrl.io import atomic_write_text

Block = tuple  # ("h", level, text) | ("p", text) | ("warn", text) | ("table", head, rows) | ("img", title, png|None, why)


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return ("+∞" if x > 0 else "−∞") if math.isinf(x) else f"{x:.{digits}f}"


def _cell(ci: dict | None) -> str:
    if not ci or ci["n"] == 0:
        return "–"
    s = f"{_fmt(ci['mean'])} [{_fmt(ci['ci_low'])}, {_fmt(ci['ci_high'])}]"
    if ci["n_seeds"] > 1:
        s += f"; seeds {_fmt(ci['seed_mean'])} ± {_fmt(ci['seed_std'])} (n={ci['n_seeds']})"
    return s


def _label(m: str) -> str:
    if m.startswith("pass@"):
        return m
    name, direction = METRICS.get(m, (m, ""))
    return name + {"+": " ↑", "-": " ↓", "": ""}[direction]


def _sig(p) -> bool:
    return p is not None and not (isinstance(p, float) and math.isnan(p)) and p < 0.05


def verdict_blocks(summary: dict) -> list[Block]:
    """The report's opening: each pre-registered hypothesis with its verdict, the gain ratios, and
    whether the judge could tell models apart."""
    out: list[Block] = []
    verdicts = summary.get("verdicts") or []
    if verdicts:
        out.append(("h", 2, "Verdict"))
        out.append(
            (
                "p",
                "Hypotheses written before the run (see the config and docs/evidence.md). held: "
                "one-sided paired test in the stated direction, Holm-adjusted over these "
                "hypotheses, below alpha, and every stated condition met; not held: significant "
                "the other way or a condition failed; inconclusive: neither.",
            )
        )
        out.append(
            (
                "table",
                ["id", "claim", "verdict", "effect and test"],
                [[v["id"], v["claim"], v["verdict"].upper(), v["why"]] for v in verdicts],
            )
        )
    for r in summary.get("ratios") or []:
        out.append(
            (
                "p",
                f"{r['name']}: {_fmt(r['ratio'], 2)} ({r['metric']} gain {r['num'][0]} − "
                f"{r['num'][1]} = {_fmt(r['num_gain'], 4)} over {r['den'][0]} − {r['den'][1]} = "
                f"{_fmt(r['den_gain'], 4)}).",
            )
        )
    judge = summary.get("judge")
    if judge and summary.get("judge_informative") is False:
        out.append(
            (
                "warn",
                f"The judge ({judge['backend']}: {judge['model']}) is UNINFORMATIVE here: every "
                "model's win rate against the human reference has a CI containing 0.5.",
            )
        )
    return out


def blocks(summary: dict) -> list[Block]:
    """The report content, in reading order."""
    b: list[Block] = [("h", 1, "replyrl evaluation report")]
    if summary["synthetic"]:
        b.append(
            (
                "warn",
                "SYNTHETIC DATA: these results come from the synthetic sample "
                "(replyrl.data.synth), not from real users; the 'audience' column is the "
                f"simulated audience, version {summary.get('audience_version') or 1}.",
            )
        )
    b.extend(verdict_blocks(summary))
    b.append(
        (
            "p",
            f"Test data: {summary['data']} — {summary['n_tweets']} tweets; "
            f"generated {summary['created']}. Proxy: {summary['proxy']}. "
            f"Gold: {summary['gold'] or 'none'}. Encoder: {summary['encoder']}.",
        )
    )
    p = summary["pass"]
    crit = (
        "the best-engaged human reply's score"
        if p["criterion"] == "reference"
        else f"the {p['quantile']:.2f}-quantile of the "
        f"{'tweet' if p['criterion'] == 'tweet_quantile' else 'whole reference set'}'s scores"
    )
    b.append(
        (
            "p",
            f"Pass@k: a reply passes when its {p['judge']} score is ≥ {crit}; unbiased "
            "estimator 1 − C(n−c,k)/C(n,k) per tweet, averaged. Cells: mean "
            "[95 % CI: tweet bootstrap for one seed, t-interval over seeds otherwise]; with "
            "several seeds also mean ± sd of the seed means."
            + (
                f" Judge win rate: how often a sampled reply beats the best-engaged human reply "
                f"under {summary['judge']['model']} ({summary['judge']['backend']} judge)."
                if summary.get("judge")
                else ""
            ),
        )
    )
    b.append(("p", summary["bertscore"]))
    for note in summary["notes"]:
        b.append(("p", f"Note: {note}"))

    metrics = summary["metrics"]
    groups = [
        ("Pass@k", [m for m in metrics if m.startswith("pass@")]),
        (
            "Engagement and quality",
            [
                m
                for m in (
                    "proxy",
                    "gold",
                    "audience",
                    "judge_win",
                    "relevance",
                    "rouge_l",
                    "bertscore_f1",
                )
                if m in metrics
            ],
        ),
        (
            "Diversity and length",
            [
                m
                for m in (
                    "self_bleu",
                    "distinct_1",
                    "distinct_2",
                    "semantic_diversity",
                    "length",
                    "duplicate_rate",
                )
                if m in metrics
            ],
        ),
    ]
    for title, ms in groups:
        if not ms:
            continue
        b.append(("h", 2, title))
        rows = [
            [name] + [_cell(model["metrics"].get(m)) for m in ms]
            for name, model in summary["models"].items()
        ]
        refs = summary.get("references", {})
        if any(m in refs for m in ms):
            rows.append(["human reference (best-engaged)"] + [_cell(refs.get(m)) for m in ms])
        b.append(("table", ["model"] + [_label(m) for m in ms], rows))

    b.append(("h", 2, "Plots"))
    b.append(("img", "Pass@k curves", plots.pass_at_k_plot(summary), "no pass@k metrics"))
    b.append(
        (
            "img",
            "Diversity–quality plane",
            plots.diversity_quality_plot(summary),
            "no engagement or diversity metric",
        )
    )
    b.append(
        (
            "img",
            "Proxy and gold engagement vs KL",
            plots.engagement_vs_kl_plot(summary),
            "no evaluated model has training logs with a KL (log_history.jsonl or tb/ beside "
            "the adapter)",
        )
    )
    b.append(
        (
            "img",
            "Over-optimisation along training: proxy, gold and audience of each checkpoint "
            "against KL and step (Gao et al. 2023)",
            plots.checkpoint_curves_plot(summary),
            "no checkpoint evaluation (pipeline `checkpoint_eval`, or `replyrl checkpoints`)",
        )
    )
    for run, seeds in (summary.get("checkpoints") or {}).items():
        for seed, pts in seeds.items():
            keys = [k for k in ("proxy", "gold", "audience", "length") if k in pts[0]]
            b.append(
                (
                    "table",
                    ["run", "seed", "step", "KL", *keys],
                    [
                        [
                            run,
                            str(seed),
                            str(p["step"]),
                            _fmt(p["kl"], 4),
                            *(_fmt(p[k]) for k in keys),
                        ]
                        for p in sorted(pts, key=lambda p: p["step"])
                    ],
                )
            )
    b.append(
        (
            "img",
            "Training reward and KL curves",
            plots.training_curves_plot(summary),
            "no training logs found beside the evaluated adapters",
        )
    )

    for key, v in (summary.get("reward_validation") or {}).items():
        b.append(("h", 2, f"The {key} reward model on held-out tweets"))
        b.append(
            (
                "p",
                f"{v['n_tweets']} tweets, {v['n_pairs']} SHP-style pairs, "
                f"{v.get('n_length_matched_pairs', 0)} length-matched "
                f"({v.get('length_match_rule', '')}). Margin over reply length: "
                f"{100 * v['margin_over_length']:+.1f} points (95 % CI "
                f"{100 * v['margin_ci95'][0]:+.1f} to {100 * v['margin_ci95'][1]:+.1f}).",
            )
        )
        cols = ["pairwise_accuracy", "length_matched_accuracy", "spearman", "spearman_given_length"]
        if v.get("n_audience_pairs"):
            cols += ["audience_accuracy", "audience_length_matched_accuracy"]
        b.append(
            (
                "table",
                ["scorer", *(c.replace("_", " ") for c in cols)],
                [[name, *(_fmt(row.get(c)) for c in cols)] for name, row in v["rows"].items()],
            )
        )
        for w in v.get("warnings", []):
            b.append(("warn", f"{key} reward model: {w}"))

    b.append(("h", 2, "Reward-hacking alarms"))
    fired = [a for a in summary["alarms"] if a["triggered"]]
    b.append(
        (
            "p",
            f"{len(fired)} alarm(s) raised over {len(summary['alarms'])} checks."
            + (
                ""
                if summary.get("gold_key")
                else " Proxy–gold divergence not checked: no gold score."
            ),
        )
    )
    b.append(
        (
            "table",
            ["model", "check", "status", "finding"],
            [
                [a["model"], a["name"], "ALARM" if a["triggered"] else "ok", a["message"]]
                for a in summary["alarms"]
            ],
        )
    )
    for a in fired:
        b.append(("h", 3, f"{a['model']}: {a['name']}"))
        b.append(
            (
                "table",
                ["tweet", "reply", "why"],
                [[e["tweet"], e["reply"], e["why"]] for e in a["examples"]],
            )
        )

    comps = summary["comparisons"]
    if comps:
        base = summary["baseline"]
        seeds = max(c["n_seeds"] for c in comps)
        b.append(("h", 2, f"Paired comparisons against {base}"))
        b.append(
            (
                "p",
                f"Each model against {base} on the same {comps[0]['n_tweets']} test tweets: mean "
                "paired difference a − b with its 95 % CI, the paired effect size d_z, and the "
                + (
                    "t-test across the seeds' effects (the seed is the unit; the Wilcoxon test "
                    "over pooled seed × tweet differences is shown as a secondary number only)"
                    if seeds > 1
                    else "Wilcoxon signed-rank test over tweets (one seed: seeds not replicated)"
                )
                + f". p is two-sided; p (Holm) is adjusted over all {len(comps)} comparisons of "
                "this table; * marks p (Holm) < 0.05.",
            )
        )
        head = ["metric", "model", "mean", f"mean {base}", "diff [95 % CI]", "d_z", "p", "p (Holm)"]
        if seeds > 1:
            head += ["seed effects", "p pooled (secondary)"]
        rows = []
        for c in comps:
            row = [
                _label(c["metric"]),
                c["a"],
                _fmt(c["mean_a"]),
                _fmt(c["mean_b"]),
                f"{_fmt(c['diff'])} [{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}]",
                _fmt(c["effect_size"], 2),
                _fmt(c["p"], 4),
                _fmt(c["p_holm"], 4) + (" *" if _sig(c["p_holm"]) else ""),
            ]
            if seeds > 1:
                row += [
                    ", ".join(_fmt(e) for e in c["seed_effects"]),
                    _fmt(c["p_pooled_tweets"], 4),
                ]
            rows.append(row)
        b.append(("table", head, rows))
    b.append(("h", 2, "Runs"))
    b.append(
        (
            "table",
            ["model", "seed", "path", "generation cache"],
            [
                [r["name"], str(r["seed"]), r["path"] or "default policy", Path(r["cache"]).name]
                for m in summary["models"].values()
                for r in m["runs"]
            ],
        )
    )
    return b


_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# what can start emphasis, code, a link or image (`[`; `(` and `!` mean nothing without it),
# strikethrough, or end a table cell; headings and lists cannot start inside a table cell
_MD_PUNCTUATION = set("\\`*_[]~|")


def escape_markdown(text: object) -> str:
    r"""`text` (a tweet, a reply, any text we did not write) as literal Markdown inline text: raw HTML
    such as `<script>` becomes entities, Markdown punctuation (emphasis, links, images, code, table
    pipes) is backslash-escaped, a leading `#`, `-`, `+`, `=` or `1.` is escaped, and line breaks
    become spaces, so a viewer shows the characters instead of rendering them, in a table cell or
    as a paragraph of its own.

    >>> print(escape_markdown("<b>hi</b> *you* | [x](y)"))
    &lt;b&gt;hi&lt;/b&gt; \*you\* \| \[x\](y)
    """
    out = []
    for c in " ".join(str(text).splitlines()):
        out.append(_MD_ENTITIES.get(c) or ("\\" + c if c in _MD_PUNCTUATION else c))
    line = "".join(out)
    # as a paragraph of its own: a leading "#", "-", "+", "=" or "1." would start a block
    block = re.match(r"(\s*)(\d+)?([#+=.)-])", line)
    if block and (block.group(2) is None) == (block.group(3) not in ".)"):
        line = line[: block.start(3)] + "\\" + line[block.start(3) :]
    return line


def to_markdown(bs: list[Block], img_dir: str | None = None) -> str:
    out = []
    for blk in bs:
        kind = blk[0]
        if kind == "h":
            out.append("#" * blk[1] + " " + blk[2])
        elif kind == "p":
            out.append(blk[1])
        elif kind == "warn":
            out.append(f"> **⚠ {blk[1]}**")
        elif kind == "table":
            head, rows = blk[1], blk[2]
            out.append("| " + " | ".join(map(escape_markdown, head)) + " |")
            out.append("|" + "---|" * len(head))
            out.extend("| " + " | ".join(map(escape_markdown, r)) + " |" for r in rows)
        elif kind == "img":
            out.append(
                f"*{blk[1]}: see report.html*" if blk[2] else f"*{blk[1]}: skipped — {blk[3]}.*"
            )
        out.append("")
    return "\n".join(out)


CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}.warn{background:#fff3cd;border:1px solid #e0b800;
padding:.8em;font-weight:bold}img{max-width:100%;border:1px solid #ddd}.skip{color:#777;font-style:italic}"""


def to_html(bs: list[Block]) -> str:
    e = html.escape
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>replyrl evaluation report</title>",
        f"<style>{CSS}</style></head><body>",
    ]
    for blk in bs:
        kind = blk[0]
        if kind == "h":
            out.append(f"<h{blk[1]}>{e(blk[2])}</h{blk[1]}>")
        elif kind == "p":
            out.append(f"<p>{e(blk[1])}</p>")
        elif kind == "warn":
            out.append(f"<div class='warn'>⚠ {e(blk[1])}</div>")
        elif kind == "table":
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in blk[1]) + "</tr>")
            out.extend(
                "<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in blk[2]
            )
            out.append("</table>")
        elif kind == "img":
            if blk[2]:
                data = base64.b64encode(blk[2]).decode()
                out.append(
                    f"<figure><img alt='{e(blk[1])}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{e(blk[1])}</figcaption></figure>"
                )
            else:
                out.append(f"<p class='skip'>{e(blk[1])}: skipped — {e(blk[3])}.</p>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(
    out: str | Path, summary: dict, rows_by_run: dict | None = None
) -> dict[str, Path]:
    """Write report.md and report.html into `out`; returns their paths."""
    out = Path(out)
    bs = blocks(summary)
    return {
        "md": atomic_write_text(out / "report.md", to_markdown(bs)),
        "html": atomic_write_text(out / "report.html", to_html(bs)),
    }
