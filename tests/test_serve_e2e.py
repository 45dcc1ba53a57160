"""End to end: `replyrl serve` with the packaged model on 127.0.0.1, driven in headless Chromium:
the default model and heuristic, and a pipeline run folder (`--run`) with a tone and a voice.

Slow (model load plus real generation on a CPU). Needs Debian's `chromium` and `chromium-driver`
(`make chromium` installs them; `make test-all` runs this). Set REPLYRL_SCREENSHOT_DIR to keep the
screenshots (docs/img/serve.png comes from here).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
TWEET = "Just shipped my first open source library!"
K = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"replyrl serve exited with {proc.returncode}; see {log}:\n{log.read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                return json.load(r)
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"replyrl serve did not answer /healthz within {timeout} s")


@contextlib.contextmanager
def _serve(tmp_path: Path, *extra: str):
    port = _free_port()
    feedback = tmp_path / "feedback.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    exe = Path(sys.executable).with_name("replyrl")
    log = open(
        tmp_path / "serve.log", "w"
    )  # a file, not a pipe: a full pipe would block the server
    cmd = [
        str(exe),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--feedback",
        str(feedback),
    ]
    proc = subprocess.Popen(
        [*cmd, "--max-new-tokens", "40", *extra],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        health = _wait_healthy(url, proc, timeout=300, log=tmp_path / "serve.log")
        yield url, feedback, health
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture()
def server(tmp_path):
    with _serve(tmp_path) as s:
        yield s


def _pipeline_run(root: Path) -> Path:
    """A finished pipeline folder with a real (untrained) LoRA adapter and reward model, where the
    hybrid recipe wins on the audience."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from replyrl.models import load_tokenizer, resolve_policy
    from replyrl.rewards.learned import HeadConfig, RewardHead, RewardModel

    torch.manual_seed(0)
    adapter = root / "experiments" / "hybrid" / "seed_0" / "adapter"
    base = AutoModelForCausalLM.from_pretrained(resolve_policy(None))
    lora = LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["q_proj", "v_proj"])
    get_peft_model(base, lora).save_pretrained(adapter)
    load_tokenizer(None).save_pretrained(adapter)
    (adapter.parent / "config.yaml").write_text(
        yaml.safe_dump({"data": {"instruction": "Write a short, friendly reply to this tweet."}})
    )
    meta = {"score_mean": 0.0, "score_std": 1.0, "heuristic_mean": 0.6, "heuristic_std": 0.1}
    RewardModel(RewardHead(HeadConfig()), meta=meta).save(root / "rewards" / "proxy")
    runs = lambda name, path: [{"name": name, "seed": 0, "id": name, "path": path}]  # noqa: E731
    summary = {
        "models": {
            "base": {"runs": runs("base", "base"), "metrics": {"audience": {"mean": 0.41}}},
            "hybrid": {
                "runs": runs("hybrid", str(adapter)),
                "metrics": {"audience": {"mean": 0.47}},
            },
        }
    }
    (root / "eval").mkdir(parents=True)
    (root / "eval" / "summary.json").write_text(json.dumps(summary))
    return root


def _browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("needs Debian's chromium and chromium-driver (run `make chromium`)")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download drivers
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1000,1300",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts)


def test_page_suggests_and_records_a_pick(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, feedback, health = server
    assert health["status"] == "ok" and health["reward"] == "heuristic"
    shots = Path(os.environ.get("REPLYRL_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    browser = _browser()
    try:
        browser.get(url + "/")
        WebDriverWait(browser, 30).until(
            ec.text_to_be_present_in_element((By.ID, "meta"), "heuristic")
        )
        browser.find_element(By.ID, "tweet").send_keys(TWEET)
        # Range inputs cannot be typed into: set K the way a drag would, firing the input event.
        browser.execute_script(
            "const k = document.getElementById('k'); k.value = arguments[0];"
            "k.dispatchEvent(new Event('input'));",
            K,
        )
        assert browser.find_element(By.ID, "k-out").text == str(K)
        browser.find_element(By.ID, "suggest").click()
        WebDriverWait(browser, 600).until(
            lambda b: len(b.find_elements(By.CSS_SELECTOR, "#cards .card")) == K
        )
        cards = browser.find_elements(By.CSS_SELECTOR, "#cards .card")
        replies = [c.find_element(By.CSS_SELECTOR, ".reply").text for c in cards]
        assert len(set(replies)) == K and all(replies)
        assert all(c.find_element(By.CSS_SELECTOR, ".components").text for c in cards)
        browser.save_screenshot(str(shots / "serve-suggestions.png"))
        cards[0].find_element(By.CSS_SELECTOR, "button.pick").click()
        WebDriverWait(browser, 60).until(
            ec.text_to_be_present_in_element((By.ID, "status"), "Saved your pick")
        )
        browser.save_screenshot(str(shots / "serve.png"))
    finally:
        browser.quit()
    rows = [json.loads(line) for line in feedback.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == K - 1
    squash = lambda t: " ".join(t.split())  # noqa: E731 — the DOM's text may re-wrap whitespace
    assert {squash(r["chosen"]) for r in rows} == {squash(replies[0])}
    assert sorted(squash(r["rejected"]) for r in rows) == sorted(squash(x) for x in replies[1:])
    assert all(
        r["source"] == "feedback" and r["tweet"] == TWEET and r["margin"] == 1.0 for r in rows
    )


@pytest.mark.filterwarnings(
    "ignore:.*gradient_checkpointing.*:FutureWarning"
)  # PEFT, making the stub
def test_run_folder_with_tone_and_voice_on_the_page(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    run = _pipeline_run(tmp_path / "demo-run")
    voice = tmp_path / "voice.txt"
    voice.write_text("ship it!! 🚀\nthis is the way\n", encoding="utf-8")
    with _serve(tmp_path, "--run", str(run), "--tone", "witty", "--voice", str(voice)) as (
        url,
        feedback,
        health,
    ):
        assert health["model"] == "hybrid, seed 0 from demo-run"
        assert health["reward"] == "composite(proxy)"
        assert "highest mean audience (0.470)" in health["source"]
        browser = _browser()
        try:
            browser.get(url + "/")
            WebDriverWait(browser, 30).until(
                ec.text_to_be_present_in_element((By.ID, "meta"), "hybrid, seed 0")
            )
            tone = Select(browser.find_element(By.ID, "tone"))
            WebDriverWait(browser, 30).until(lambda b: tone.first_selected_option.text == "witty")
            options = [o.get_attribute("value") for o in tone.options]
            assert options == ["", "supportive", "curious", "witty", "expert"]
            assert browser.find_element(By.ID, "voice").get_attribute("value") == (
                "ship it!! 🚀\nthis is the way"
            )
            tone.select_by_value("curious")  # the person changes the tone on the page
            browser.find_element(By.ID, "tweet").send_keys(TWEET)
            browser.execute_script(
                "const k = document.getElementById('k'); k.value = 2;"
                "k.dispatchEvent(new Event('input'));"
            )
            browser.find_element(By.ID, "suggest").click()
            WebDriverWait(browser, 600).until(
                lambda b: len(b.find_elements(By.CSS_SELECTOR, "#cards .card")) == 2
            )
            assert "tone: curious" in browser.find_element(By.ID, "status").text
            cards = browser.find_elements(By.CSS_SELECTOR, "#cards .card")
            assert "learned" in cards[0].find_element(By.CSS_SELECTOR, ".components").text
            cards[1].find_element(By.CSS_SELECTOR, "button.pick").click()
            WebDriverWait(browser, 60).until(
                ec.text_to_be_present_in_element((By.ID, "status"), "Saved your pick")
            )
            # One pick per answer: every pick button is now disabled.
            assert all(
                not b.is_enabled() for b in browser.find_elements(By.CSS_SELECTOR, "button.pick")
            )
        finally:
            browser.quit()
    rows = [json.loads(line) for line in feedback.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert row["tone"] == "curious" and row["voice"] == ["ship it!! 🚀", "this is the way"]
    assert row["model"] == "hybrid, seed 0 from demo-run" and row["reward"] == "composite(proxy)"
    assert row["suggestion_id"] and row["tweet"] == TWEET
