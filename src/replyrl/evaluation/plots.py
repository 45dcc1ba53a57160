"""Report plots as PNG bytes (matplotlib, Agg backend: no display needed).

Each function returns None when its data is missing, and the report then says why the plot is
absent instead of showing an empty frame.
"""

from __future__ import annotations

import io

import numpy as np


def _fig():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _fig().close(fig)
    return buf.getvalue()


def _err(ci: dict) -> tuple[float, list[list[float]]]:
    m = ci["mean"]
    return m, [[max(m - ci["ci_low"], 0.0)], [max(ci["ci_high"] - m, 0.0)]]


def pass_at_k_plot(summary: dict) -> bytes | None:
    """pass@k against k, one line per model with its bootstrap 95 % CI band."""
    ks = [int(m[5:]) for m in summary["metrics"] if m.startswith("pass@")]
    if not ks:
        return None
    plt = _fig()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, model in summary["models"].items():
        cis = [model["metrics"][f"pass@{k}"] for k in ks]
        ax.plot(ks, [c["mean"] for c in cis], marker="o", label=name)
        ax.fill_between(ks, [c["ci_low"] for c in cis], [c["ci_high"] for c in cis], alpha=0.2)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"pass@k (judge: {summary['pass']['judge']}, vs {summary['pass']['criterion']})")
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def diversity_quality_plot(summary: dict) -> bytes | None:
    """Two planes: semantic diversity vs engagement, and Self-BLEU vs BERTScore, one point per model."""
    metrics = summary["metrics"]
    quality = next((k for k in ("gold", "audience", "proxy") if k in metrics), None)
    if quality is None or "semantic_diversity" not in metrics:
        return None
    plt = _fig()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = [("semantic_diversity", quality), ("self_bleu", "bertscore_f1")]
    for ax, (x, y) in zip(axes, panels):
        for name, model in summary["models"].items():
            mx, ex = _err(model["metrics"][x])
            my, ey = _err(model["metrics"][y])
            ax.errorbar([mx], [my], xerr=ex, yerr=ey, fmt="o", capsize=3, label=name)
            ax.annotate(name, (mx, my), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set_xlabel(x.replace("_", " ") + (" (lower = more diverse)" if x == "self_bleu" else ""))
        ax.set_ylabel(y.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0].set_title(f"diversity vs {quality} engagement")
    axes[1].set_title("Self-BLEU vs BERTScore")
    axes[0].legend(fontsize=8)
    return _png(fig)


def engagement_vs_kl_plot(summary: dict) -> bytes | None:
    """Proxy and gold engagement of each run against its final training KL (base model at 0).

    The over-optimisation picture of Gao et al. 2023: the proxy keeps rising with KL while the
    gold peaks and falls. Needs at least one run with a logged KL.
    """
    training = summary.get("training", {})
    if not any(t.get("final_kl") is not None for t in training.values()):
        return None
    keys = [k for k in ("proxy", "gold", "audience") if k in summary["metrics"]]
    plt = _fig()
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name, model in summary["models"].items():
            xs, ys = [], []
            for run in model["runs"]:
                t = training.get(run["id"])
                kl = (
                    t["final_kl"]
                    if t and t.get("final_kl") is not None
                    else (0.0 if not run["path"] else None)
                )
                if kl is None:
                    continue
                xs.append(kl)
                ys.append(
                    model["metrics"][key]["seed_mean"]
                    if len(model["runs"]) > 1
                    else model["metrics"][key]["mean"]
                )
            if xs:
                ax.scatter(xs, ys, label=name)
        ax.set_xlabel("KL from reference (final training log)")
        ax.set_ylabel(f"mean {key} score")
        ax.set_title(f"{key} vs KL")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def training_curves_plot(summary: dict) -> bytes | None:
    """Reward and KL against step from each run's training log."""
    training = summary.get("training", {})
    if not training:
        return None
    plt = _fig()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for t in training.values():
        label = f"{t['name']} seed {t['seed']}"
        if t["reward"]:
            s, v = np.array(t["reward"]).T
            a1.plot(s, v, label=label)
        if t["kl"]:
            s, v = np.array(t["kl"]).T
            a2.plot(s, v, label=label)
    for ax, what in ((a1, "reward"), (a2, "KL")):
        ax.set_xlabel("step")
        ax.set_ylabel(what)
        ax.set_title(f"training {what}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def checkpoint_curves_plot(summary: dict) -> bytes | None:
    """Proxy, gold and audience of each run's checkpoints against KL (top) and step (bottom)."""
    curves = summary.get("checkpoints") or {}
    if not curves:
        return None
    keys = [
        k
        for k in ("proxy", "gold", "audience")
        if any(k in p for seeds in curves.values() for pts in seeds.values() for p in pts)
    ]
    plt = _fig()
    fig, axes = plt.subplots(2, len(keys), figsize=(5 * len(keys), 7), squeeze=False)
    for col, key in enumerate(keys):
        for run, seeds in curves.items():
            for seed, pts in seeds.items():
                pts = sorted(pts, key=lambda p: p["step"])
                label = run if len(seeds) == 1 else f"{run} seed {seed}"
                kl = [p["kl"] if p["kl"] is not None else np.nan for p in pts]
                ys = [p.get(key, np.nan) for p in pts]
                axes[0][col].plot(kl, ys, marker="o", label=label)
                axes[1][col].plot([p["step"] for p in pts], ys, marker="o", label=label)
        axes[0][col].set_xlabel("KL from reference (training log at the checkpoint)")
        axes[1][col].set_xlabel("step")
        for row in (0, 1):
            axes[row][col].set_ylabel(f"mean {key} score")
            axes[row][col].grid(alpha=0.3)
        axes[0][col].set_title(f"{key} along training")
    axes[0][0].legend(fontsize=8)
    return _png(fig)
