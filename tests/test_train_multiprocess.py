"""Multi-process GRPO (`accelerate launch --num_processes 2 --cpu`): a prompt's K = 4 completions
are split 2 + 2 over the ranks, and the objective still credits them as one group — the same R a
single process computes from the whole group, and not what each half alone would give. Both ranks
run the same number of steps; only rank 0 writes the log."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_group_split_over_two_processes_is_credited_as_one(tmp_path, encoder):
    from replyrl.rewards.embeddings import EmbeddingCache
    from replyrl.training.objective import ObjectiveConfig, Weights, objective_rewards

    launcher = Path(sys.executable).parent / "accelerate"
    # `accelerate launch --cpu` starts several CPU processes only through mpirun; `--multi_gpu` uses
    # torch.distributed's launcher, and ACCELERATE_USE_CPU=1 makes the group a gloo (MULTI_CPU) one.
    cmd = [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    cmd += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29533"]
    cmd += [str(ROOT / "tests" / "scripts" / "two_process_grpo.py"), str(tmp_path)]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "ACCELERATE_USE_CPU": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["global_step"] for r in ranks] == [2, 2]
    rows = [json.loads(x) for x in (tmp_path / "log_history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2]  # rank 0 only: no duplicates
    weights = Weights(alpha=0.3, beta=0.5, lam=0.5, mode="multiplicative")
    cfg = ObjectiveConfig(diversity_floor=0.0, diversity_min_chars=0)
    for c0, c1, local0, local1 in zip(
        ranks[0]["calls"], ranks[1]["calls"], ranks[0]["local_texts"], ranks[1]["local_texts"]
    ):
        assert len(local0) == len(local1) == 2  # each rank generated half of the group
        assert c0 == c1  # both ranks computed the same R from the same gathered group
        assert c0["texts"] == local0 + local1 and len(set(c0["keys"])) == 1
        emb = EmbeddingCache(encoder).encode(c0["texts"])
        whole, _ = objective_rewards(
            np.array(c0["engagement"]), emb, c0["texts"], c0["keys"], 4, weights, cfg
        )
        np.testing.assert_allclose(c0["rewards"], whole, rtol=1e-5, atol=1e-6)
        halves = np.concatenate(
            [
                objective_rewards(
                    np.array(c0["engagement"][s]),
                    emb[s],
                    c0["texts"][s],
                    c0["keys"][s],
                    2,
                    weights,
                    cfg,
                )[0]
                for s in (slice(0, 2), slice(2, 4))
            ]
        )
        if len(set(c0["texts"])) == 4:  # distinct replies: the split credit is really different
            assert not np.allclose(halves, whole)
