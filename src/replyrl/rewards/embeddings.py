"""Sentence embeddings keyed by text, so each distinct text is encoded once per run (DESIGN §3).

In GRPO the same tweet is scored K times per step and again every epoch; in evaluation the same
replies are rescored under several reward models. Caching by exact text makes those repeats free.
The cache can be saved to and loaded from a folder (`keys.json` + `embeddings.safetensors`; no
pickle) so a reward-model training run can skip re-encoding a data set it has seen.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from replyrl.io import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)


def text_key(text: str) -> str:
    """Cache key of a text (sha1 of its UTF-8 bytes: fixed size, safe to store)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """L2-normalized sentence embeddings of texts, computed once per distinct text.

    Args:
        encoder: a SentenceTransformer-like object with `.encode(texts, ...)`; None loads the
            packaged all-MiniLM-L6-v2 on first use.
        enabled: when False every call encodes every text (used by the benchmark to measure the
            cache's effect).
        max_items: evict the oldest entries beyond this many (bounded memory in long RL runs).
        batch_size: encoder batch size.
        encoder_name: which encoder to load when `encoder` is None (None: the packaged one).
        device: where a loaded encoder runs (None: `auto`, see replyrl.device).
    """

    def __init__(
        self,
        encoder: Any = None,
        enabled: bool = True,
        max_items: int = 500_000,
        batch_size: int = 64,
        encoder_name: str | None = None,
        device: str | None = None,
    ):
        self._encoder = encoder
        self.encoder_name = encoder_name
        self.device = device
        self.enabled = enabled
        self.max_items = max_items
        self.batch_size = batch_size
        self._store: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from replyrl.models import load_encoder

            self._encoder = load_encoder(self.encoder_name, self.device)
        return self._encoder

    @property
    def dim(self) -> int:
        if self._store:
            return int(next(iter(self._store.values())).shape[0])
        return int(self.encoder.get_sentence_embedding_dimension())

    def __len__(self) -> int:
        return len(self._store)

    def _encode(self, texts: list[str]) -> np.ndarray:
        emb = self.encoder.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        emb = np.asarray(emb, dtype=np.float32).reshape(len(texts), -1)
        # Encoders that ignore `normalize_embeddings` (test doubles, custom wrappers) are normalized
        # here so that a dot product is always a cosine.
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return emb / np.maximum(norms, 1e-12)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings (n, dim), float32, unit norm; each distinct uncached text encoded once."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self.enabled:
            self.misses += len(texts)
            return self._encode(texts)
        keys = [text_key(t) for t in texts]
        todo: dict[str, str] = {}
        for k, t in zip(keys, texts):
            if k in self._store:
                self.hits += 1
            elif k not in todo:
                todo[k] = t
                self.misses += 1
            else:
                self.hits += 1
        if todo:
            emb = self._encode(list(todo.values()))
            for k, e in zip(todo, emb):
                self._store[k] = e
            while len(self._store) > self.max_items:
                self._store.popitem(last=False)
        out = np.empty((len(texts), self._store[keys[0]].shape[0]), dtype=np.float32)
        for i, k in enumerate(keys):
            e = self._store.get(k)
            if e is None:  # evicted during this very call (max_items smaller than the batch)
                e = self._encode([texts[i]])[0]
            out[i] = e
        return out

    def save(self, folder: str | Path) -> Path:
        """Write the cache to `folder` (keys.json + embeddings.safetensors)."""
        from safetensors.numpy import save

        folder = Path(folder)
        keys = list(self._store)
        mat = np.stack([self._store[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)
        atomic_write_bytes(folder / "embeddings.safetensors", save({"embeddings": mat}))
        atomic_write_json(folder / "keys.json", keys, indent=0)
        return folder

    def load(self, folder: str | Path) -> int:
        """Add the entries saved in `folder`; returns how many were loaded (0 when absent)."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        folder = Path(folder)
        if not (folder / "keys.json").exists() or not (folder / "embeddings.safetensors").exists():
            return 0
        try:
            keys = json.loads((folder / "keys.json").read_bytes().decode("utf-8"))
            mat = load_file(str(folder / "embeddings.safetensors"))["embeddings"]
            problem = _cache_problem(keys, mat)
        except (OSError, ValueError, KeyError, RecursionError, SafetensorError) as e:
            problem = f"unreadable ({type(e).__name__}: {str(e)[:80]})"
        if problem:
            # a cache: encode again (the next save replaces it) rather than stop the run
            log.warning("embedding cache %s is corrupt (%s); encoding again", folder, problem)
            return 0
        for k, e in zip(keys, mat):
            self._store[k] = np.asarray(e, dtype=np.float32)
        return len(keys)


def _cache_problem(keys: Any, mat: np.ndarray) -> str:
    """Why saved keys and embeddings cannot be used together ('' when they can)."""
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return "keys.json is not a list of text keys"
    if mat.ndim != 2 or len(keys) != mat.shape[0]:
        return f"{len(keys)} keys but embeddings of shape {list(mat.shape)}"
    if not np.isfinite(mat).all():
        return "non-finite embeddings"
    return ""


def default_cache_dir(encoder_name: str | None = None) -> Path:
    """Where `reward train/validate` persist embeddings: `$REPLYRL_CACHE/embeddings/<encoder>`."""
    from replyrl.models import DEFAULT_ENCODER, cache_dir

    name = Path(encoder_name).name if encoder_name else DEFAULT_ENCODER
    return cache_dir() / "embeddings" / name


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two (n, d) arrays of unit vectors."""
    return np.einsum("nd,nd->n", a, b).astype(np.float64)
