"""Generate text from any loaded text model: blocks, batching, seeds → token ids and decoded strings.

The CLI, the report and the benchmark share this entry point, so one seed
gives the same text everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from protein_didi.core.sampler import SamplerConfig, ancestral_sample
from protein_didi.text.pretrained import LoadedModel
from protein_didi.text.prompts import masked_blocks

SAMPLERS = ("ancestral", "rgas")
ProgressCallback = Callable[[int, int], None]


def generate_tokens(
    loaded: LoadedModel,
    num: int,
    length: int | None = None,
    nfe: int = 32,
    sampler: str = "ancestral",
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
    rgas_kwargs: dict | None = None,
) -> torch.Tensor:
    """(num, length) token ids ``<bos> text <eos>``; ``length`` defaults to the model's training block length."""
    if num < 1:
        raise ValueError(f"number of samples must be ≥ 1, got {num}")
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
    if batch_size < 1:
        raise ValueError(f"batch size must be ≥ 1, got {batch_size}")
    length = loaded.block_length if length is None else int(length)
    device = next(loaded.model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    config = SamplerConfig(nfe, temperature, top_p)
    n_batches = -(-num // batch_size)
    out = []
    for b in range(n_batches):
        n = min(batch_size, num - b * batch_size)
        z, fixed = (x.to(device) for x in masked_blocks(loaded.tokenizer, length, n))

        def on_step(step: int, n_steps: int, _z: torch.Tensor, _base: int = b * nfe) -> None:
            if progress is not None:
                progress(_base + step, n_batches * nfe)

        if sampler == "rgas":
            if loaded.discriminator is None:
                raise ValueError(
                    f"RGAS needs a discriminator; model '{loaded.name}' has none (use a distilled student)"
                )
            from protein_didi.core.rgas import RGASConfig, rgas_sample

            cfg = RGASConfig(sampler=config, **(rgas_kwargs or {}))
            z = rgas_sample(loaded.model, loaded.discriminator, z, fixed, loaded.schedule, cfg, gen, on_step)
        else:
            z = ancestral_sample(loaded.model, z, fixed, loaded.schedule, config, gen, on_step)
        out.append(z.cpu())
    return torch.cat(out)


def decode_blocks(loaded: LoadedModel, tokens: torch.Tensor) -> list[str]:
    """Text between the fixed ``<bos>`` and ``<eos>`` of each block; inner ``<|endoftext|>`` marks a new document."""
    return [loaded.tokenizer.decode(row[1:-1].tolist()) for row in tokens]


def generate(loaded: LoadedModel, num: int, length: int | None = None, nfe: int = 32, **kwargs) -> list[str]:
    """Decoded samples; keyword arguments as :func:`generate_tokens`."""
    return decode_blocks(loaded, generate_tokens(loaded, num, length, nfe, **kwargs))
