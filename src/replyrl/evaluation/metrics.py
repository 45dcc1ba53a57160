"""Per-tweet evaluation metrics (DESIGN §5), each computed with the library the field trusts.

Every function takes the n sampled replies of one tweet (and its human references) and returns
plain floats, so per-tweet scores can be kept for the statistics and recomputed from the cache.

- Pass@k: the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained
  on Code", eq. 1): `1 - C(n-c, k) / C(n, k)`, computed as a stable product.
- Self-BLEU: sacrebleu's sentence BLEU of each reply against its siblings (exp smoothing,
  effective order), 0-100, lower = more diverse (Zhu et al. 2018, Texygen).
- Distinct-n: unique n-grams / total n-grams over the tweet's replies (Li et al. 2016).
- ROUGE-L F1: rouge-score, stemming on, best over the tweet's human replies.
- BERTScore F1: the greedy token matching of Zhang et al. 2020 on the local encoder's last-layer
  token embeddings (bert-score itself is not installed and would download roberta-large), no idf,
  no baseline rescaling, [CLS]/[SEP] excluded, best over the tweet's human replies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one prompt with `n` samples of which `c` pass.

    >>> pass_at_k(4, 1, 1)
    0.25
    >>> pass_at_k(4, 3, 2)  # n - c = 1 < k = 2: every draw of two contains a pass
    1.0
    """
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"pass_at_k: k={k} exceeds the n={n} samples; sample n >= max(k)")
    if n - c < k:
        return 1.0
    # 1 - prod_{i=n-c+1}^{n} (1 - k/i) == 1 - C(n-c, k)/C(n, k), without huge binomials.
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def tokens(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens (the unit of Distinct-n)."""
    return _TOKEN.findall(text.lower())


def distinct_n(replies: Sequence[str], n: int) -> float:
    """Unique n-grams / total n-grams over all replies; NaN when there is no n-gram at all."""
    grams = [
        tuple(t[i : i + n]) for r in replies for t in [tokens(r)] for i in range(len(t) - n + 1)
    ]
    return len(set(grams)) / len(grams) if grams else float("nan")


def self_bleu(replies: Sequence[str]) -> float:
    """Mean sentence BLEU (0-100) of each reply against the others; NaN for fewer than 2."""
    if len(replies) < 2:
        return float("nan")
    bleu = _bleu()
    scores = [
        bleu.sentence_score(r, [o for j, o in enumerate(replies) if j != i]).score
        for i, r in enumerate(replies)
    ]
    return float(np.mean(scores))


@lru_cache(maxsize=1)
def _bleu():
    from sacrebleu.metrics import BLEU

    # Sentence-level BLEU needs smoothing (a zero 4-gram precision would zero the score);
    # "exp" is sacrebleu's default for sentence_bleu, effective_order skips orders a short
    # reply cannot have.
    return BLEU(smooth_method="exp", effective_order=True)


def duplicate_rate(replies: Sequence[str]) -> float:
    """Share of replies that repeat an earlier one after normalising case, spaces and punctuation."""
    if not replies:
        return float("nan")
    keys = [" ".join(tokens(re.sub(r"[^\w\s]", " ", r))) for r in replies]
    return 1.0 - len(set(keys)) / len(keys)


@lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(replies: Sequence[str], references: Sequence[str]) -> list[float]:
    """ROUGE-L F1 of each reply, taking the best over the references."""
    scorer = _rouge()
    return [float(scorer.score_multi(list(references), r)["rougeL"].fmeasure) for r in replies]


def embed(encoder, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """L2-normalised sentence embeddings (n, d), each distinct text encoded once."""
    uniq = sorted(set(texts))
    if not uniq:
        return np.zeros((0, 1))
    emb = np.asarray(
        encoder.encode(
            uniq, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
        ),
        dtype=np.float64,
    )
    index = {t: i for i, t in enumerate(uniq)}
    return emb[[index[t] for t in texts]]


def semantic_diversity(emb: np.ndarray) -> float:
    """Mean pairwise cosine distance of normalised embeddings (n, d); NaN for fewer than 2."""
    n = len(emb)
    if n < 2:
        return float("nan")
    sim = emb @ emb.T  # (n, n)
    off = sim[~np.eye(n, dtype=bool)]
    return float(max(0.0, np.mean(1.0 - off)))  # float error can give -1e-8 for identical replies


def token_embeddings(encoder, texts: Sequence[str], batch_size: int = 64) -> dict[str, np.ndarray]:
    """Normalised last-layer token embeddings per distinct text, [CLS] and [SEP] removed."""
    uniq = sorted(set(texts))
    if not uniq:
        return {}
    out = encoder.encode(
        uniq, batch_size=batch_size, output_value="token_embeddings", show_progress_bar=False
    )
    result = {}
    for t, e in zip(uniq, out):
        e = np.asarray(e.float().cpu().numpy() if hasattr(e, "cpu") else e, dtype=np.float64)
        e = e[1:-1] if len(e) > 2 else e[:0]  # (tokens, d): drop [CLS] ... [SEP], as BERTScore does
        norm = np.linalg.norm(e, axis=1, keepdims=True)
        result[t] = e / np.maximum(norm, 1e-12)
    return result


def bertscore_f1(cand: np.ndarray, ref: np.ndarray) -> float:
    """BERTScore F1 from normalised token embeddings (tc, d) and (tr, d): greedy max matching."""
    if len(cand) == 0 or len(ref) == 0:
        return 0.0
    sim = cand @ ref.T  # (tc, tr)
    p, r = sim.max(axis=1).mean(), sim.max(axis=0).mean()
    return float(2 * p * r / (p + r)) if p + r > 0 else 0.0


def bertscore(
    replies: Sequence[str], references: Sequence[str], tok_emb: dict[str, np.ndarray]
) -> list[float]:
    """BERTScore F1 of each reply, the best over the references (as bert-score does for multi-ref)."""
    return [max(bertscore_f1(tok_emb[r], tok_emb[ref]) for ref in references) for r in replies]


def mean_finite(values: Sequence[float]) -> float:
    """Mean of the finite values, NaN when none."""
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")
