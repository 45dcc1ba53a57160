"""Batched reply sampling: many prompts per forward pass, left padding, n replies per prompt.

The decode loop is ours rather than `model.generate` because evaluation is throughput-bound
on small models, where `generate` spends most of a batched step outside the model:
`torch.multinomial` and a full-vocabulary sort for top-p cost nearly as much as all the model's
matrix multiplies at 64 rows on a CPU, every prompt is prefilled n times, and rows that hit EOS
keep being computed until the longest row ends. Here each prompt is prefilled once and its KV
cache repeated n times, sampling is top-k → top-p inside the k candidates → one uniform per row
(inverse CDF), and finished rows leave the batch. transformers' continuous batching
(`generate_batch`) does the last part too, but measured 1.6 replies/s vs 4.4 for `generate` on
this CPU (paged attention is built for GPUs). Each prompt draws its uniforms from its own
generator, seeded by (seed, prompt), so a tweet's replies do not depend on which tweets share
its batch or on the batch size.

Backends, one interface (`generate_replies` for a loaded model, `load_sampler` for a model path):
- `loop`: the decode loop above; the default on a CPU.
- `generate`: transformers' `model.generate`; the default on a GPU, where the per-step overheads
  the loop removes are small next to the kernels (the own loop has not been timed on a GPU yet:
  `scripts/gpu_check.sh` prints both). Seeded per batch, so replies depend on the batch.
- `vllm`: vLLM's engine (`pip install vllm`, CUDA only), from a model path; one seed per prompt,
  so replies do not depend on the batch.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Literal

from replyrl.config import SEED_MAX, ConfigError
from replyrl.device import DeviceError
from replyrl.models import DEFAULT_INSTRUCTION, build_prompt

Backend = Literal["auto", "loop", "generate", "vllm"]
BACKENDS = ("auto", "loop", "generate", "vllm")


@dataclass
class SamplingConfig:
    """How replies are sampled."""

    n: int = 4
    """Replies per tweet."""
    max_new_tokens: int = 48
    """Token budget per reply."""
    temperature: float = 0.9
    """Sampling temperature (> 0)."""
    top_k: int = 50
    """Sample among the k most likely tokens (0 = all); 50 is transformers' default."""
    top_p: float = 0.95
    """Nucleus sampling mass, applied inside the top-k candidates."""
    batch_prompts: int = 8
    """Prompts per forward pass (each expanded to n rows); changes speed, not the replies."""
    seed: int = 0
    """Sampling seed; with the same seed a prompt gets the same replies on the same machine."""
    instruction: str = DEFAULT_INSTRUCTION
    """System instruction placed before each tweet."""
    backend: Backend = "auto"
    """Sampler: auto (loop on a CPU, generate on a GPU), loop (ours), generate (transformers), vllm."""

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {self.backend!r}")
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")
        if not 0 < self.temperature <= 2:
            raise ConfigError(f"temperature must be in (0, 2], got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ConfigError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if self.max_new_tokens < 1 or self.batch_prompts < 1:
            raise ConfigError("max_new_tokens and batch_prompts must be >= 1")
        if not 0 <= self.seed <= SEED_MAX:
            raise ConfigError(f"seed must be in 0..{SEED_MAX}, got {self.seed}")


def clean_reply(text: str) -> str:
    """Trim whitespace and a stray role header some small models emit."""
    text = text.strip()
    for tag in ("<|im_end|>", "<|im_start|>"):
        text = text.split(tag)[0]
    return text.strip()


def nucleus(logits, temperature: float, top_k: int, top_p: float):
    """Candidate token ids and their sampling probabilities, most likely first.

    Same distribution as transformers' Temperature → TopK → TopP warpers followed by softmax:
    a candidate is kept when the mass of the candidates ranked above it is < top_p (the first
    always). logits: (rows, vocab). Returns (ids, probs), both (rows, k); dropped ones get 0.
    """
    import torch

    vocab = logits.shape[-1]
    if 0 < top_k < vocab:
        top, ids = logits.float().topk(top_k, dim=-1)  # sorted, descending
    else:
        top, ids = logits.float().sort(dim=-1, descending=True)
    probs = torch.softmax(top / temperature, dim=-1)
    above = probs.cumsum(-1) - probs
    probs = probs.masked_fill(above >= top_p, 0.0)
    return ids, probs / probs.sum(-1, keepdim=True)


def sample_tokens(logits, uniforms, temperature: float, top_k: int, top_p: float):
    """One token per row by inverse CDF over the nucleus; uniforms: (rows,) in [0, 1)."""
    import torch

    ids, probs = nucleus(logits, temperature, top_k, top_p)
    cdf = probs.cumsum(-1)
    pick = torch.searchsorted(cdf, (uniforms.to(cdf) * cdf[:, -1]).unsqueeze(-1), right=True)
    return ids.gather(-1, pick.clamp(max=ids.shape[-1] - 1)).squeeze(-1)


def prompt_seed(seed: int, prompt: str) -> int:
    """A 63-bit seed from the run seed and the prompt text."""
    return int.from_bytes(hashlib.sha256(f"{seed}\0{prompt}".encode()).digest()[:8], "big") >> 1


def eos_ids(model, tokenizer) -> list[int]:
    """Token ids that end a reply: the model's generation EOS (int or list) and the tokenizer's."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return sorted(set(ids))


COMPACT_AT = 0.1
"""Finished rows leave the batch once they are this fraction of it. Leaving copies the whole KV
cache, staying costs one row of compute per step; at 128 rows on a 2-core CPU, compacting after
every EOS was 6 % slower than waiting for a tenth of the batch."""


KV_LAYER_TRANSFORMERS = ">=5.23,<5.24"
"""transformers versions whose private `DynamicLayer` the reserved KV layer was tested against.
Outside them the loop uses transformers' own `DynamicCache` (same replies, ~11 % fewer replies/s
on a CPU, docs/evaluation.md#speed): a minor release may change the private class."""


@functools.cache
def _kv_layer_class():
    """The reserved-room KV layer class, or None where the private base class is not the tested one."""
    import transformers
    from packaging.specifiers import SpecifierSet

    if transformers.__version__ not in SpecifierSet(KV_LAYER_TRANSFORMERS, prereleases=True):
        return None
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:
        return None

    class ReservedKVLayer(DynamicLayer):
        """A `DynamicLayer` that writes new keys/values into reserved room instead of `torch.cat`.

        `DynamicLayer` copies its whole cache every step (with the model's other `torch.cat`
        calls, 13 % of a 128-row decode step on CPU; reserved room gave +11 % replies/s);
        here the cache is a view of a buffer with `reserve` spare positions, grown only when full.
        """

        def __init__(self, reserve: int):
            super().__init__()
            self.reserve, self.buf_k, self.buf_v = reserve, None, None

        def _owns_view(self) -> bool:
            return self.buf_k is not None and self.keys.data_ptr() == self.buf_k.data_ptr()

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            cur = self.get_seq_length()
            new = cur + key_states.shape[-2]
            fits = (
                self.buf_k is not None
                and (cur == 0 or self._owns_view())
                and self.buf_k.shape[0] == key_states.shape[0]
                and self.buf_k.shape[-2] >= new
            )
            if not fits:  # first call, full, or the cache was replaced by a parent-class method
                b, h, _, d = key_states.shape
                self.buf_k = key_states.new_empty(b, h, new + self.reserve, d)
                d_v = value_states.shape[-1]
                self.buf_v = value_states.new_empty(b, h, new + self.reserve, d_v)
                if cur:
                    self.buf_k[:, :, :cur], self.buf_v[:, :, :cur] = self.keys, self.values
            self.buf_k[:, :, cur:new], self.buf_v[:, :, cur:new] = key_states, value_states
            self.keys, self.values = self.buf_k[:, :, :new], self.buf_v[:, :, :new]
            return self.keys, self.values

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self._owns_view():
                cur = self.get_seq_length()
                self.buf_k = self.buf_k.repeat_interleave(repeats, dim=0)
                self.buf_v = self.buf_v.repeat_interleave(repeats, dim=0)
                self.keys, self.values = self.buf_k[:, :, :cur], self.buf_v[:, :, :cur]
            else:
                super().batch_repeat_interleave(repeats)

        def batch_select_indices(self, indices) -> None:
            if self._owns_view():
                cur = self.get_seq_length()
                self.buf_k, self.buf_v = self.buf_k[indices], self.buf_v[indices]
                self.keys, self.values = self.buf_k[:, :, :cur], self.buf_v[:, :, :cur]
            else:
                super().batch_select_indices(indices)

    return ReservedKVLayer


def new_cache(model, reserve: int):
    """A `DynamicCache` for the model whose plain layers keep `reserve` spare positions (plain
    layers where the reserved layer is not available, see KV_LAYER_TRANSFORMERS)."""
    from transformers import DynamicCache

    cache = DynamicCache(config=getattr(model, "config", None))
    layer = _kv_layer_class()
    if layer is not None:
        plain = layer.__mro__[1]  # DynamicLayer
        # sliding-window and other special layers keep their own update rules
        cache.layers = [layer(reserve) if type(x) is plain else x for x in cache.layers]
    return cache


def sample_batch(
    model, input_ids, attention_mask, generators: list, cfg: SamplingConfig, eos: list[int]
) -> list[list[int]]:
    """New token ids for n samples of each left-padded prompt; row b*n + j is sample j of prompt b.

    A row stops after its first EOS (kept in its ids) or after cfg.max_new_tokens.
    """
    import torch

    n, rows = cfg.n, input_ids.shape[0] * cfg.n
    device = input_ids.device
    # left padding takes no positions
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    cache = new_cache(model, cfg.max_new_tokens)
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    ).logits[:, -1]
    cache.batch_repeat_interleave(n)  # prompt computed once, shared by its n samples
    logits = logits.repeat_interleave(n, dim=0)
    mask = attention_mask.repeat_interleave(n, dim=0)
    next_pos = positions[:, -1].repeat_interleave(n) + 1
    live = torch.arange(rows, device=device)  # which sample each batch row is
    done = torch.zeros(rows, dtype=torch.bool, device=device)  # finished, still in the batch
    eos_t = torch.tensor(eos, device=device)
    out: list[list[int]] = [[] for _ in range(rows)]
    for step in range(cfg.max_new_tokens):
        going = ~done
        counts = torch.bincount(live[going] // n, minlength=len(generators)).tolist()
        uniforms = torch.full((len(live),), 0.5, device=device)
        uniforms[going] = torch.cat(
            [torch.rand(c, generator=g, device=device) for g, c in zip(generators, counts) if c]
        )
        token = sample_tokens(logits, uniforms, cfg.temperature, cfg.top_k, cfg.top_p)
        token[done] = eos[0]
        for r, t in zip(live[going].tolist(), token[going].tolist()):
            out[r].append(t)
        done |= torch.isin(token, eos_t)
        if step + 1 == cfg.max_new_tokens or done.all():
            break
        if done.sum() >= max(1.0, COMPACT_AT * len(live)):
            keep = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            live, token, mask = live[keep], token[keep], mask[keep]
            next_pos, done = next_pos[keep], done[keep]
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        logits = model(
            input_ids=token[:, None],
            attention_mask=mask,
            position_ids=next_pos[:, None],
            past_key_values=cache,
            use_cache=True,
        ).logits[:, -1]
        next_pos = next_pos + 1
    return out


def resolve_backend(backend: str, device: str) -> str:
    """The sampler for `backend` on `device` (a torch device string such as "cpu" or "cuda:0").

    `auto`: the own loop on a CPU, transformers `generate` elsewhere. Raises DeviceError when vLLM
    is asked for but not installed, or asked for off a CUDA GPU.
    """
    if backend not in BACKENDS:
        raise ValueError(f"sampling backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "loop" if str(device).startswith("cpu") else "generate"
    if backend == "vllm":
        require_vllm("sampling.backend=vllm")
        if not str(device).startswith("cuda"):
            raise DeviceError(
                f"sampling.backend=vllm needs a CUDA GPU, but the device is '{device}'; "
                "use backend=auto (loop on a CPU, generate on a GPU)"
            )
    return backend


def require_vllm(what: str) -> None:
    """Raise DeviceError unless the `vllm` package can be imported."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise DeviceError(
            f"{what} needs vLLM, which is not installed: on a CUDA machine install a vLLM build "
            "that matches your torch (README, GPU section), or turn vLLM off"
        )


def generate_replies(
    model, tokenizer, tweets: list[str], cfg: SamplingConfig | None = None, progress: bool = False
) -> list[list[str]]:
    """Sample `cfg.n` replies for each tweet from a loaded HF model, `cfg.batch_prompts` prompts
    per forward pass, with the `loop` or `generate` backend (`vllm` samples from a model path:
    `load_sampler`).

    Returns one list of n replies per tweet, in input order.
    """
    cfg = cfg or SamplingConfig()
    if not tweets:
        return []
    device = next(model.parameters()).device
    backend = resolve_backend(cfg.backend, device.type)
    if backend == "vllm":
        raise ValueError("the vllm backend samples from a model path: use load_sampler(path, cfg)")
    tokenizer.padding_side = "left"
    prompts = [build_prompt(tokenizer, t, cfg.instruction) for t in tweets]
    token_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    # similar lengths share a batch: less left padding
    order = sorted(range(len(prompts)), key=lambda i: len(token_ids[i]))
    eos = eos_ids(model, tokenizer)
    out: list[list[str]] = [[] for _ in prompts]
    starts = range(0, len(order), cfg.batch_prompts)
    if progress:
        from rich.progress import track

        starts = track(starts, description=f"Sampling {cfg.n} replies x {len(tweets)} tweets")
    sample = sample_loop if backend == "loop" else sample_generate
    for start in starts:
        chunk = order[start : start + cfg.batch_prompts]
        ids = sample(
            model,
            [token_ids[i] for i in chunk],
            [prompt_seed(cfg.seed, prompts[i]) for i in chunk],
            cfg,
            eos,
            tokenizer.pad_token_id,
        )
        texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
        for b, i in enumerate(chunk):
            out[i] = [clean_reply(t) for t in texts[b * cfg.n : (b + 1) * cfg.n]]
    return out


def left_pad(prompt_ids: list[list[int]], pad_id: int, device):
    """(input_ids, attention_mask) of left-padded prompts, both (prompts, longest)."""
    import torch

    width = max(len(p) for p in prompt_ids)
    ids = torch.full((len(prompt_ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompt_ids), width), dtype=torch.long)
    for row, p in enumerate(prompt_ids):
        ids[row, width - len(p) :] = torch.tensor(p, dtype=torch.long)
        mask[row, width - len(p) :] = 1
    return ids.to(device), mask.to(device)


def sample_loop(
    model, prompt_ids: list[list[int]], seeds: list[int], cfg: SamplingConfig, eos, pad_id: int
) -> list[list[int]]:
    """`cfg.n` samples of each prompt with the own loop; row b*n + j is sample j of prompt b.

    Each prompt draws from its own generator seeded by `seeds[b]`.
    """
    import torch

    device = next(model.parameters()).device
    input_ids, attention_mask = left_pad(prompt_ids, pad_id, device)
    gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    with torch.no_grad():
        return sample_batch(model, input_ids, attention_mask, gens, cfg, eos)


def sample_generate(
    model, prompt_ids: list[list[int]], seeds: list[int], cfg: SamplingConfig, eos, pad_id: int
) -> list[list[int]]:
    """`cfg.n` samples of each prompt with transformers `generate`; same layout as `sample_loop`.

    The global RNG is forked (left as it was) and seeded from the batch's seeds, so a batch's
    replies are reproducible but depend on which prompts share it.
    """
    import torch

    device = next(model.parameters()).device
    input_ids, attention_mask = left_pad(prompt_ids, pad_id, device)
    batch_seed = prompt_seed(cfg.seed, ",".join(map(str, seeds)))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(batch_seed)
        with torch.no_grad():
            seqs = model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                do_sample=True,
                temperature=cfg.temperature,
                top_k=cfg.top_k,
                top_p=cfg.top_p,
                max_new_tokens=cfg.max_new_tokens,
                num_return_sequences=cfg.n,
                pad_token_id=pad_id,
                eos_token_id=list(eos),
            )
    out = []
    for row in seqs[:, input_ids.shape[1] :].tolist():
        stop = next((i for i, t in enumerate(row) if t in eos), None)
        out.append(row if stop is None else row[: stop + 1])  # keep the EOS, as the loop does
    return out


def load_sampler(
    model_path: str | None, cfg: SamplingConfig, device: str = "auto", dtype: str = "auto"
):
    """A function tweets -> `cfg.n` replies each, for any backend, loading the model on first use.

    `model_path`: HF id, checkpoint or adapter folder (None: the packaged default policy).
    """
    from replyrl.device import resolve_device

    device = resolve_device(device)
    backend = resolve_backend(cfg.backend, device)  # fails here, before any model loads
    state: dict = {}

    def sample(tweets: list[str], progress: bool = False) -> list[list[str]]:
        if backend == "vllm":
            if "llm" not in state:
                state["llm"], state["tok"] = _load_vllm(model_path, dtype, device, cfg.seed)
            return _vllm_replies(state["llm"], state["tok"], tweets, cfg, progress)
        if "model" not in state:
            from replyrl.models import load_policy

            # merged LoRA: the same outputs, faster sampling
            state["model"], state["tok"] = load_policy(model_path, dtype, device, True)
        return generate_replies(state["model"], state["tok"], tweets, cfg, progress)

    return sample


def _load_vllm(model_path: str | None, dtype: str, device: str, seed: int):
    """A vLLM engine over `model_path`; an adapter folder is merged into a plain checkpoint first
    (once, under $REPLYRL_CACHE/merged/) since vLLM loads checkpoints, not PEFT folders."""
    from vllm import LLM

    from replyrl.device import resolve_dtype
    from replyrl.models import is_adapter_dir, load_tokenizer, resolve_policy

    path = resolve_policy(model_path)
    if is_adapter_dir(path):
        path = _merged_checkpoint(path)
    # The policy shares the GPU with the encoder and the judge: leave them room.
    llm = LLM(model=path, dtype=resolve_dtype(dtype, device), seed=seed, gpu_memory_utilization=0.5)
    return llm, load_tokenizer(path)


def _merged_checkpoint(adapter: str) -> str:
    import hashlib
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from replyrl.models import cache_dir, load_policy

    files = sorted(p for p in Path(adapter).iterdir() if p.is_file())
    key = hashlib.sha256(
        "".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns};" for p in files).encode()
    ).hexdigest()[:16]
    target = cache_dir() / "merged" / f"{Path(adapter).resolve().name}-{key}"
    if not (target / "config.json").exists():
        model, tok = load_policy(adapter, "float32", "cpu", merge_adapter=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".merge-", dir=target.parent))
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    return str(target)


def _vllm_replies(llm, tokenizer, tweets: list[str], cfg: SamplingConfig, progress: bool):
    """n replies per tweet from vLLM; each prompt has its own seed (batch-invariant, as the loop)."""
    from vllm import SamplingParams

    if not tweets:
        return []
    prompts = [build_prompt(tokenizer, t, cfg.instruction) for t in tweets]
    params = [
        SamplingParams(
            n=cfg.n,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            top_k=cfg.top_k if cfg.top_k > 0 else -1,  # vLLM: -1 = all tokens
            max_tokens=cfg.max_new_tokens,
            seed=prompt_seed(cfg.seed, p),
        )
        for p in prompts
    ]
    outputs = llm.generate(prompts, params, use_tqdm=progress)
    return [[clean_reply(c.text) for c in o.outputs] for o in outputs]
