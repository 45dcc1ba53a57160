"""The one `device` setting: where the policy, reference, encoder, judge and sampler run.

`auto` picks the first of cuda → mps → cpu that this machine has. An explicit device that is not
there, or bf16 on a device without bf16 support, is a `DeviceError` naming the setting and what to
do, raised before any model loads. Everything here is a plain function of torch's own checks, so
tests can monkeypatch `torch.cuda.is_available` and friends.
"""

from __future__ import annotations

import re

from replyrl.errors import UserError

DEVICE_HELP = "auto (cuda → mps → cpu), cpu, cuda, cuda:N or mps"
DTYPES = ("auto", "float32", "bfloat16", "float16")


class DeviceError(UserError, ValueError):
    """A device, dtype or backend this machine cannot provide; the message says what to use."""


def check_device_name(name: str, where: str = "device") -> str:
    """`name` if it is a device this project knows, without looking at the hardware."""
    if not isinstance(name, str) or not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", name):
        raise DeviceError(f"{where}: unknown device {name!r}; use {DEVICE_HELP}")
    return name


def resolve_device(name: str = "auto", where: str = "device") -> str:
    """The concrete device for `name`: `auto` → cuda, else mps, else cpu.

    Raises DeviceError when `name` asks for a device this machine does not have.
    """
    import torch

    check_device_name(name, where)
    has_mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"{where}={name}, but torch {torch.__version__} sees no CUDA GPU on this machine "
                "(a CPU-only torch build, or no driver); use device=auto or device=cpu"
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"{where}={name}, but this machine has {torch.cuda.device_count()} CUDA GPU(s) "
                f"(cuda:0 … cuda:{torch.cuda.device_count() - 1})"
            )
    if name == "mps" and not has_mps:
        raise DeviceError(f"{where}=mps, but this machine has no Apple MPS device; use auto or cpu")
    return name


def supports_bf16(device: str) -> bool:
    """Whether bf16 training/inference is supported and worth it on `device`.

    CUDA: when torch says so (compute capability 8.0+). CPU and MPS: no — CPU bf16 matmuls are
    slower than float32 on most CPUs and change results across machines; MPS bf16 depends on the
    macOS version, so it is not chosen silently.
    """
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return False


def resolve_dtype(dtype: str, device: str, where: str = "dtype") -> str:
    """The weight dtype for `device`: `auto` → bfloat16 where supported, else float32.

    Raises DeviceError for bfloat16/float16 on a device that does not support it.
    """
    if dtype not in DTYPES:
        raise DeviceError(f"{where}: unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    if dtype == "auto":
        return "bfloat16" if supports_bf16(device) else "float32"
    if dtype == "bfloat16" and not supports_bf16(device):
        raise DeviceError(
            f"{where}=bfloat16 needs a CUDA GPU with bf16 support (compute capability 8.0+); "
            f"device '{device}' has none: use {where}=auto or float32"
        )
    if dtype == "float16" and not device.startswith(("cuda", "mps")):
        raise DeviceError(
            f"{where}=float16 needs a GPU (cuda or mps); on '{device}' use {where}=auto or float32"
        )
    return dtype
