"""End to end: `replyrl evaluate` on the base model and a tiny LoRA adapter over 20 synthetic
tweets, then report.html rendered in headless Chromium with every plot image loaded."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _make_adapter(run: Path) -> Path:
    """A random (non-identity) LoRA on the default policy, saved like a training run would."""
    import torch
    from peft import LoraConfig, get_peft_model

    from replyrl.models import load_policy

    torch.manual_seed(0)
    model, tok = load_policy()
    peft = get_peft_model(
        model,
        LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    adapter = run / "adapter"
    peft.save_pretrained(adapter)
    tok.save_pretrained(adapter)
    rows = [{"step": s, "kl": 0.01 * s, "reward": 0.4 + 0.02 * s} for s in range(1, 11)]
    (run / "log_history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return adapter


@pytest.mark.slow
def test_evaluate_two_models_and_render_report_in_chromium(tmp_path):
    from replyrl.data.synth import synthesize
    from replyrl.records import write_records

    data = write_records(tmp_path / "test.jsonl", synthesize(n_tweets=20, seed=7))
    adapter = _make_adapter(tmp_path / "experiments" / "lora" / "seed_0")
    out = tmp_path / "eval"
    cli = [
        str(Path(sys.executable).parent / "replyrl"),
        "evaluate",
        "--model",
        "base=base",
        "--model",
        f"lora={adapter}",
        "--data",
        str(data),
        "--out",
        str(out),
        "--config",
        str(Path(__file__).parents[1] / "configs" / "eval" / "smoke.yaml"),
        "--set",
        "max_tweets=20",
    ]
    res = subprocess.run(cli, capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for f in ("summary.json", "report.md", "report.html"):
        assert (out / f).stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["synthetic"] and summary["n_tweets"] == 20
    assert set(summary["models"]) == {"base", "lora"}
    assert "audience" in summary["metrics"] and "judge_win" in summary["metrics"]
    assert summary["training"]["lora__seed0"]["final_kl"] == pytest.approx(0.1)
    assert (out / "report.md").read_text().count("SYNTHETIC DATA") == 1

    # a second run reuses the generation cache: no model is loaded, results are identical
    res2 = subprocess.run(cli, capture_output=True, text=True, timeout=600)
    assert res2.returncode == 0, res2.stderr[-3000:]
    again = json.loads((out / "summary.json").read_text())
    assert (
        again["models"]["lora"]["metrics"]["pass@1"]
        == summary["models"]["lora"]["metrics"]["pass@1"]
    )

    chromium, driver_bin = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_bin:
        pytest.skip("chromium/chromedriver not installed (`make chromium` installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in CHROMIUM_FLAGS + ["--window-size=1280,2000"]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
    try:
        driver.get((out / "report.html").as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth]);"
        )
        driver.save_screenshot(str(out / "report.png"))
    finally:
        driver.quit()
    assert len(images) == 4, images  # pass@k, diversity-quality, engagement vs KL, training curves
    assert all(done and width > 0 for _, done, width in images), images
    assert (out / "report.png").stat().st_size > 10_000
    # keep the screenshot and report where a reviewer can look at them after tmp dirs rotate
    keep = Path(__file__).parents[1] / "output" / "test-artifacts"
    keep.mkdir(parents=True, exist_ok=True)
    for f in ("report.png", "report.html", "report.md"):
        shutil.copy(out / f, keep / f"eval_e2e_{f}")
