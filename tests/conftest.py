"""Shared fixtures: the packaged models loaded once per session, and the real data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "reddit-college"


def shared_file(name: str) -> Path:
    """A file of ../shared/data/reddit-college, or skip the test with the reason."""
    p = SHARED_DATA / name
    if not p.exists():
        pytest.skip(f"real data not present: {p} (see shared/data/README.md)")
    return p


@pytest.fixture(scope="session")
def encoder():
    from replyrl.models import load_encoder

    return load_encoder()


@pytest.fixture(scope="session")
def policy():
    """(model, tokenizer) of the default packaged policy."""
    from replyrl.models import load_policy

    return load_policy()


@pytest.fixture(scope="session")
def synth_file(tmp_path_factory):
    """A small synthetic records file (12 tweets, simulated audience), written once per session."""
    from replyrl.data.synth import synthesize
    from replyrl.records import write_records

    path = tmp_path_factory.mktemp("synth") / "synth12.jsonl"
    write_records(path, synthesize(n_tweets=12, seed=0))
    return path
