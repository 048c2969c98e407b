"""Inference precision: ``auto``/``fp32``/``bf16``/``int8``, chosen once per device and applied once per model.

Why here: sampling, the judge, the app and the benchmarks must agree on what a
precision means and when a device can run it, and none of that is domain
specific. Models are converted once at load time (bf16 weights, or int8
dynamically quantised ``nn.Linear`` layers), never cast per call. Training
never goes through this module. Samplers keep their float64 categorical draws
whatever the network runs in (log-probs are cast up before any sampling).

When a precision pays:

* ``bf16`` needs native bf16 arithmetic: CUDA with bf16 units (Ampere or newer),
  or a CPU with AVX512-BF16 / AMX-BF16 (x86) or the ARMv8.6 BF16 extension. Elsewhere
  PyTorch emulates it and a forward pass gets several times *slower* than fp32
  (measured: 3.7× slower on an AVX2 EPYC), so it is refused there.
* ``int8`` is PyTorch's dynamic quantisation (int8 weights, activations quantised
  per call, fbgemm/onednn kernels): CPU only, works on any x86-64 with AVX2.
* ``auto`` = bf16 where it is native, else fp32 (int8 is opt-in: it changes
  the arithmetic more than bf16 and its gain depends on the CPU).
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

PRECISIONS = ("auto", "fp32", "bf16", "int8")
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86 /proc/cpuinfo flags; "bf16" is aarch64's
# Linear layers with fewer outputs than this stay fp32 under int8: output heads (logits, D's score) gain
# nothing measurable from int8 and feed the probabilities directly.
INT8_MIN_OUT_FEATURES = 128
FP32_BUFFERS = frozenset({"inv_freq"})  # buffers kept fp32 under bf16 (rotary position frequencies)


class PrecisionError(ValueError):
    """A precision this device cannot run (well); the message names the alternative."""


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags Linux reports (``flags`` on x86, ``Features`` on ARM); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` does bf16 arithmetic in hardware (so bf16 is faster than fp32, not emulated)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(cpu_flags() & CPU_BF16_FLAGS)
    return False  # MPS and others: bf16 support varies by OS version; stay with fp32


def resolve_precision(name: str, device: torch.device | str) -> str:
    """``auto`` → ``bf16`` or ``fp32`` for ``device``; an explicit choice is checked and returned.

    Raises :class:`PrecisionError` (one line) for a precision the device cannot run well.
    """
    device = torch.device(device)
    if name not in PRECISIONS:
        raise PrecisionError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    if name == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if name == "int8" and device.type != "cpu":
        alt = "bf16" if native_bf16(device) else "fp32"
        raise PrecisionError(f"--precision int8 runs on CPU only (dynamic quantisation); on {device} use {alt}")
    if name == "bf16" and not native_bf16(device):
        where = "this CPU has no AVX512-BF16/AMX" if device.type == "cpu" else f"{device} has no native bf16"
        alt = "int8 or fp32" if device.type == "cpu" else "fp32"
        raise PrecisionError(
            f"--precision bf16: {where}, so bf16 is emulated and slower than fp32; use --precision {alt}"
        )
    return name


def apply_precision(module: nn.Module, precision: str) -> nn.Module:
    """Convert an inference module once: ``fp32`` as is, ``bf16`` weights, or ``int8`` dynamic quantisation.

    bf16 converts parameters and buffers except rotary frequencies (``FP32_BUFFERS``).

    ``precision`` must already be resolved (not ``auto``). int8 replaces
    ``nn.Linear`` layers in place (CPU only); small output heads stay fp32
    (see ``INT8_MIN_OUT_FEATURES``). Returns the module, in eval mode.
    """
    module.eval()
    if precision == "fp32":
        return module.float()
    if precision == "bf16":
        # rotary frequencies stay fp32: rounded to bf16 (8 bits) they shift the phase at position 1000 by radians
        keep = {name: buf.clone() for name, buf in module.named_buffers() if name.split(".")[-1] in FP32_BUFFERS}
        module.to(torch.bfloat16)
        for name, buf in keep.items():
            owner, _, leaf = name.rpartition(".")
            setattr(module.get_submodule(owner), leaf, buf)
        return module
    if precision == "int8":
        skip = {
            name
            for name, sub in module.named_modules()
            if isinstance(sub, nn.Linear) and sub.out_features < INT8_MIN_OUT_FEATURES
        }
        with warnings.catch_warnings():  # torch.ao's deprecation notices say nothing actionable to a user
            warnings.simplefilter("ignore")
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            # per-channel weight scales: same kernels as per-tensor, smaller error for rows of unequal norm
            spec = {
                name: per_channel_dynamic_qconfig
                for name, sub in module.named_modules()
                if type(sub) is nn.Linear and name and name not in skip and isinstance(sub.weight, torch.Tensor)
            }
            quantize_dynamic(module, spec, dtype=torch.qint8, inplace=True)
        return module
    raise PrecisionError(f"cannot convert to precision {precision!r}; resolve it first (one of fp32, bf16, int8)")


def discriminator_precision(precision: str) -> str:
    """The precision RGAS's discriminator runs in when its denoiser runs in ``precision``.

    RGAS differentiates the reward with respect to its input: bf16 has a backward
    pass, dynamically quantised int8 layers have none, so under int8 D stays fp32.
    """
    return "bf16" if precision == "bf16" else "fp32"


def convert_for_inference(model: nn.Module, discriminator: nn.Module | None, precision: str) -> None:
    """Convert a freshly loaded fp32 denoiser (and its discriminator, if loaded) to a resolved ``precision``."""
    if precision == "fp32":
        return
    apply_precision(model, precision)
    if discriminator is not None and discriminator_precision(precision) != "fp32":
        apply_precision(discriminator, discriminator_precision(precision))


def module_precision(module: nn.Module) -> str:
    """What ``module`` runs in now: ``int8`` if any Linear is dynamically quantised, else its weights' dtype."""
    for sub in module.modules():
        if type(sub).__module__.startswith("torch.ao.nn.quantized"):
            return "int8"
    dtypes = {p.dtype for p in module.parameters() if p.is_floating_point()}
    return "bf16" if dtypes == {torch.bfloat16} else "fp32" if dtypes <= {torch.float32} else str(dtypes)


def parameter_count(module: nn.Module) -> int:
    """Weights in ``module``, counting int8 dynamically quantised layers (their packed weights are no parameters)."""
    count = sum(p.numel() for p in module.parameters())
    for sub in module.modules():
        if type(sub).__module__.startswith("torch.ao.nn.quantized") and callable(getattr(sub, "weight", None)):
            bias = sub.bias()
            count += sub.weight().numel() + (bias.numel() if bias is not None else 0)
    return count
