"""End to end: `replyrl serve` with the packaged model on 127.0.0.1, driven in headless Chromium.

Slow (model load plus real generation on a CPU). Needs Debian's `chromium` and `chromium-driver`
(`make chromium` installs them; `make test-all` runs this). Set REPLYRL_SCREENSHOT_DIR to keep the
screenshots (docs/img/serve.png comes from here).
"""

from __future__ import annotations

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


@pytest.fixture()
def server(tmp_path):
    port = _free_port()
    feedback = tmp_path / "feedback.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    exe = Path(sys.executable).with_name("replyrl")
    log = open(
        tmp_path / "serve.log", "w"
    )  # a file, not a pipe: a full pipe would block the server
    proc = subprocess.Popen(
        [
            str(exe),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--feedback",
            str(feedback),
            "--max-new-tokens",
            "40",
        ],
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
