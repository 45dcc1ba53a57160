"""Batched reply sampling: many prompts per `generate` call, left padding, n replies per prompt."""

from __future__ import annotations

from dataclasses import dataclass

from replyrl.models import DEFAULT_INSTRUCTION, build_prompt


@dataclass
class SamplingConfig:
    """How replies are sampled."""

    n: int = 4
    """Replies per tweet."""
    max_new_tokens: int = 48
    """Token budget per reply."""
    temperature: float = 0.9
    """Sampling temperature (> 0)."""
    top_p: float = 0.95
    """Nucleus sampling mass."""
    batch_prompts: int = 8
    """Prompts per `generate` call (each expanded to n sequences)."""
    seed: int = 0
    """Sampling seed; the same seed and inputs give the same replies on CPU."""
    instruction: str = DEFAULT_INSTRUCTION
    """System instruction placed before each tweet."""

    def __post_init__(self):
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if not 0 < self.temperature <= 2:
            raise ValueError(f"temperature must be in (0, 2], got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1 or self.batch_prompts < 1:
            raise ValueError("max_new_tokens and batch_prompts must be >= 1")


def clean_reply(text: str) -> str:
    """Trim whitespace and a stray role header some small models emit."""
    text = text.strip()
    for tag in ("<|im_end|>", "<|im_start|>"):
        text = text.split(tag)[0]
    return text.strip()


def generate_replies(model, tokenizer, tweets: list[str], cfg: SamplingConfig | None = None,
                     progress: bool = False) -> list[list[str]]:
    """Sample `cfg.n` replies for each tweet, batching prompts into one `generate` call.

    Returns one list of n replies per tweet, in input order.
    """
    import torch

    cfg = cfg or SamplingConfig()
    tokenizer.padding_side = "left"
    out: list[list[str]] = []
    starts = range(0, len(tweets), cfg.batch_prompts)
    if progress:
        from rich.progress import track

        starts = track(starts, description=f"Sampling {cfg.n} replies x {len(tweets)} tweets")
    device = next(model.parameters()).device
    for b, start in enumerate(starts):
        chunk = tweets[start:start + cfg.batch_prompts]
        prompts = [build_prompt(tokenizer, t, cfg.instruction) for t in chunk]
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        seed = cfg.seed * 100_003 + start  # per-chunk seed: results do not depend on batch order
        sample = dict(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p,
                      max_new_tokens=cfg.max_new_tokens, pad_token_id=tokenizer.pad_token_id)
        with torch.no_grad():
            seqs = _generate_shared_prefill(model, enc, cfg.n, seed, sample)
            if seqs is None:
                torch.manual_seed(seed)
                seqs = model.generate(**enc, num_return_sequences=cfg.n, **sample)
            # seqs: (len(chunk) * n, prompt_len + new)
        texts = tokenizer.batch_decode(seqs[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        for i in range(len(chunk)):
            out.append([clean_reply(t) for t in texts[i * cfg.n:(i + 1) * cfg.n]])
    return out


def _generate_shared_prefill(model, enc, n: int, seed: int, sample: dict):
    """Sample n continuations per prompt, running the prompt forward pass once per prompt.

    `generate(num_return_sequences=n)` copies each prompt n times before the prefill, so the
    prompt (system instruction + tweet, typically ~4x longer than a reply) is computed n times.
    Here the prompt minus its last token is prefilled once, the KV cache is repeated n times,
    and `generate` continues from it (transformers' prefix-cache reuse). Sampling consumes the
    RNG exactly as the plain call does, so replies are identical for the same seed. Returns None
    when the model's cache cannot be reused this way (the caller then uses the plain call).
    """
    import torch

    ids, mask = enc["input_ids"], enc["attention_mask"]  # (B, L), left-padded
    if n < 2 or ids.shape[1] < 2:
        return None
    try:
        from transformers import DynamicCache

        cache = DynamicCache(config=getattr(model, "config", None))
        pos = (mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, L): positions skip left padding
        model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=pos[:, :-1],
              past_key_values=cache, use_cache=True)
        cache.batch_repeat_interleave(n)  # (B*n, heads, L-1, hd) per layer
        torch.manual_seed(seed)
        return model.generate(input_ids=ids.repeat_interleave(n, dim=0),
                              attention_mask=mask.repeat_interleave(n, dim=0),
                              past_key_values=cache, **sample)
    except (TypeError, ValueError, AttributeError, NotImplementedError, RuntimeError):
        return None
