"""`Stages`: skip when nothing changed, force, and invalidation by upstream *content* and code."""

from pathlib import Path

from replyrl.pipeline import Stages


class Chain:
    """a -> b -> c; each stage writes a file from its upstream's content, and counts its runs."""

    def __init__(self, root: Path, a_text: str = "A"):
        self.root, self.a_text = root, a_text
        self.calls: list[str] = []

    def write(self, name: str, text: str):
        def fn():
            self.calls.append(name)
            (self.root / f"{name}.txt").write_text(text)

        return fn

    def run(self, force=(), code="v1"):
        st = Stages(self.root, list(force), code=code)
        a, b, c = (self.root / f"{x}.txt" for x in "abc")
        st.run("a", {"cfg": 1}, [a], self.write("a", self.a_text))
        st.run("b", {"cfg": 1}, [b], self.write("b", "B from " + a.read_text()), deps=["a"])
        st.run("c", {"cfg": 1}, [c], self.write("c", "C from " + b.read_text()), deps=["b"])
        return st


def test_unchanged_rerun_skips_everything(tmp_path):
    chain = Chain(tmp_path)
    assert chain.run().ran == ["a", "b", "c"]
    chain.calls.clear()
    assert chain.run().ran == [] and chain.calls == []


def test_forcing_a_stage_with_the_same_output_reruns_nothing_downstream(tmp_path):
    chain = Chain(tmp_path)
    chain.run()
    assert chain.run(force=["a"]).ran == ["a"]  # same content: b and c stay valid


def test_a_changed_upstream_output_reruns_every_downstream_stage(tmp_path):
    chain = Chain(tmp_path)
    chain.run()
    chain.a_text = "A, retrained after a code change"
    assert chain.run(force=["a"]).ran == ["a", "b", "c"]
    assert (tmp_path / "c.txt").read_text() == "C from B from A, retrained after a code change"


def test_an_output_edited_by_hand_reruns_its_stage(tmp_path):
    chain = Chain(tmp_path)
    chain.run()
    (tmp_path / "b.txt").write_text("tampered")
    assert chain.run().ran == ["b"]  # b rewrites the same content, so c stays valid
    assert (tmp_path / "b.txt").read_text() == "B from A"


def test_a_code_change_reruns_everything(tmp_path):
    chain = Chain(tmp_path)
    chain.run(code="v1")
    assert chain.run(code="v2").ran == ["a", "b", "c"]


def test_a_corrupt_record_reruns_the_stage_and_names_the_file(tmp_path, capsys):
    chain = Chain(tmp_path)
    chain.run()
    (tmp_path / "stages" / "b.json").write_text("{not json")
    assert chain.run().ran == ["b"]
    assert "stages/b.json" in capsys.readouterr().err.replace("\n", "")


def test_only_an_interrupted_attempt_with_the_same_inputs_is_resumable(tmp_path):
    seen = []

    def crash():
        seen.append(st.resumable)
        raise KeyboardInterrupt

    def finish():
        seen.append(st.resumable)
        (tmp_path / "t.txt").write_text("done")

    st = Stages(tmp_path, [], code="v1")
    for fn in (crash,):
        try:
            st.run("train", {"cfg": 1}, [tmp_path / "t.txt"], fn)
        except KeyboardInterrupt:
            pass
    st = Stages(tmp_path, [], code="v1")
    st.run("train", {"cfg": 1}, [tmp_path / "t.txt"], finish)  # same inputs: resume
    st = Stages(tmp_path, ["train"], code="v2")
    st.run("train", {"cfg": 1}, [tmp_path / "t.txt"], finish)  # other code: start over
    assert seen == [False, True, False]


def test_parallel_training_respects_dependencies(tmp_path, monkeypatch):
    """workers > 1: each training stage runs as its own `replyrl train` process, an RL stage only
    after the SFT stage of its seed; a rerun skips them all."""
    import subprocess
    import threading

    from replyrl.config import load_config
    from replyrl.pipeline import _train_parallel
    from replyrl.training.config import TrainConfig

    started, lock = [], threading.Lock()

    def fake_run(cmd, stdout=None, stderr=None):
        cfg = load_config(TrainConfig, cmd[cmd.index("-c") + 1])
        adapter = tmp_path / cfg.name / "adapter"
        adapter.mkdir(parents=True, exist_ok=True)
        for f in ("adapter_config.json", "adapter_model.safetensors"):
            (adapter / f).write_text(cfg.name)
        with lock:
            started.append((cfg.name, "--overwrite" in cmd))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)

    def task(name, deps):
        cfg = load_config(
            TrainConfig, None, [f"name={name}", "recipe=sft", f"output_dir={tmp_path}"]
        )
        out = tmp_path / name / "adapter"
        return (
            f"train_{name}",
            cfg,
            [out / "adapter_config.json", out / "adapter_model.safetensors"],
            deps,
        )

    tasks = [task("sft", []), task("grpo", ["train_sft"]), task("hybrid", ["train_sft"])]
    st = Stages(tmp_path, [], code="v1")
    _train_parallel(tasks, st, 2, tmp_path)
    assert started[0] == ("sft", True) and {n for n, _ in started[1:]} == {"grpo", "hybrid"}
    assert sorted(st.ran) == ["train_grpo", "train_hybrid", "train_sft"]
    st = Stages(tmp_path, [], code="v1")
    started.clear()
    _train_parallel(tasks, st, 2, tmp_path)
    assert started == [] and st.ran == []
