"""Read training logs beside an evaluated adapter, tolerantly (missing or partial logs -> None).

A training run writes `output/experiments/<name>/seed_<s>/` with `log_history.jsonl` (TRL's
log_history dicts: `step`, `kl`, `reward`, ...) and TensorBoard events under `tb/`
(`train/kl`, `train/reward`, ...). An adapter is either that folder itself or a subfolder of it
(e.g. `.../seed_0/adapter`), so both the adapter folder and its parent are searched.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

# Names a curve may carry, first match wins: log_history keys, then TensorBoard tags.
KL_KEYS = ("kl", "train/kl", "objective/kl")
REWARD_KEYS = ("reward", "train/reward", "rewards/mean", "objective/scores")


def run_folder(model_path: str | None) -> Path | None:
    """The training run folder of an adapter path, or None (base model, unknown layout)."""
    if not model_path:
        return None
    p = Path(model_path).expanduser()
    if not p.is_dir():
        return None
    for cand in (p, p.parent):
        if (cand / "log_history.jsonl").exists() or (cand / "tb").is_dir():
            return cand
    return None


def _read_history(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line from a killed run is skipped, not fatal
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _series(rows: list[dict], keys: tuple[str, ...]) -> list[tuple[float, float]]:
    for k in keys:
        pts = [
            (float(r.get("step", i)), float(r[k]))
            for i, r in enumerate(rows)
            if isinstance(r.get(k), (int, float)) and math.isfinite(r[k])
        ]
        if pts:
            return pts
    return []


def _tb_series(tb_dir: Path, keys: tuple[str, ...]) -> list[tuple[float, float]]:
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return []
    try:
        acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
        acc.Reload()
        tags = set(acc.Tags().get("scalars", []))
    except Exception:
        return []
    for k in keys:
        if k in tags:
            return [
                (float(e.step), float(e.value)) for e in acc.Scalars(k) if math.isfinite(e.value)
            ]
    return []


def training_curves(model_path: str | None) -> dict | None:
    """`{"folder", "kl": [(step, v)], "reward": [(step, v)], "final_kl"}` or None when no logs."""
    folder = run_folder(model_path)
    if folder is None:
        return None
    rows = (
        _read_history(folder / "log_history.jsonl")
        if (folder / "log_history.jsonl").exists()
        else []
    )
    kl, reward = _series(rows, KL_KEYS), _series(rows, REWARD_KEYS)
    if (not kl or not reward) and (folder / "tb").is_dir():
        kl = kl or _tb_series(folder / "tb", KL_KEYS)
        reward = reward or _tb_series(folder / "tb", REWARD_KEYS)
    if not kl and not reward:
        return None
    return {
        "folder": str(folder),
        "kl": kl,
        "reward": reward,
        "final_kl": kl[-1][1] if kl else None,
    }
