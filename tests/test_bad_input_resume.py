"""Resume and overwrite: a checkpoint without its optimizer, schedule or RNG state is refused
(naming the missing file) before anything is written or loaded, and `--overwrite` never deletes
anything outside `output_dir`. (Kill -9 + `--resume` itself is covered by the slow resume tests.)"""

from __future__ import annotations

import pytest
from bad_input import assert_one_line_error, cli


@pytest.fixture()
def train_cfg(tmp_path):
    f = tmp_path / "train.yaml"
    f.write_text(f"recipe: sft\nname: r\noutput_dir: {tmp_path / 'runs'}\n")
    return f


CKPT_FILES = ["trainer_state.json", "optimizer.pt", "scheduler.pt", "rng_state.pth"]


def _checkpoint(tmp_path, step=2, drop=(), name="r"):
    ck = tmp_path / "runs" / name / "seed_0" / "checkpoints" / f"checkpoint-{step}"
    ck.mkdir(parents=True)
    for f in CKPT_FILES:
        if f not in drop:
            (ck / f).write_bytes(b"state")
    return ck


@pytest.mark.parametrize(
    "drop,needle",
    [
        (["optimizer.pt"], "optimizer.pt"),
        (["scheduler.pt"], "scheduler.pt"),
        (["rng_state.pth"], "rng_state.pth"),
        (["optimizer.pt", "rng_state.pth"], "optimizer.pt"),
    ],
)
def test_resume_from_a_checkpoint_missing_state(tmp_path, train_cfg, monkeypatch, drop, needle):
    import replyrl.training.run as run

    ck = _checkpoint(tmp_path, drop=drop)

    def no_trainer(*a, **k):
        raise AssertionError("a trainer was built")

    monkeypatch.setattr(run, "build_trainer", no_trainer)
    r = cli("train", "-c", train_cfg, "--resume")
    assert_one_line_error(r, str(ck), needle, "cannot resume exactly")
    assert not (tmp_path / "runs" / "r" / "seed_0" / "run_info.json").exists()  # nothing written


def test_checkpoint_checks(tmp_path):
    from replyrl.errors import ArtifactError
    from replyrl.training.run import check_checkpoint, latest_checkpoint

    ok = _checkpoint(tmp_path, step=2)
    check_checkpoint(ok)
    partial = _checkpoint(tmp_path, step=4, drop=["trainer_state.json", "rng_state.pth"])
    assert latest_checkpoint(partial.parent) == str(ok)  # a save killed midway is skipped
    multi = _checkpoint(tmp_path, step=6, drop=["rng_state.pth"])
    (multi / "rng_state_0.pth").write_bytes(b"x")
    check_checkpoint(multi)
    ds = _checkpoint(tmp_path, step=8, drop=["optimizer.pt", "rng_state.pth"])
    (ds / "global_step8").mkdir()
    check_checkpoint(ds)  # DeepSpeed keeps both in its own folder
    folder = _checkpoint(tmp_path, step=10, drop=["optimizer.pt"])
    (folder / "optimizer.pt").mkdir()
    with pytest.raises(ArtifactError, match="optimizer.pt"):
        check_checkpoint(folder)


def test_overwrite_never_deletes_outside_output_dir(tmp_path, train_cfg, monkeypatch):
    import replyrl.training.run as run

    outside = tmp_path / "precious"
    (outside / "seed_0").mkdir(parents=True)
    (outside / "seed_0" / "keep.txt").write_text("mine")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "r").symlink_to(outside, target_is_directory=True)
    monkeypatch.setattr(run, "build_trainer", lambda *a, **k: pytest.fail("trainer built"))
    r = cli("train", "-c", train_cfg, "--overwrite")
    assert_one_line_error(r, "refusing to delete", str(outside))
    assert (outside / "seed_0" / "keep.txt").read_text() == "mine"
