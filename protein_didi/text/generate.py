"""Generate text from any loaded text model: a :class:`TextRequest` → token ids and decoded strings.

The CLI, the report and the benchmark share this entry point, so one request
(seed included) gives the same text everywhere.
"""

from __future__ import annotations

import torch

from protein_didi.core.draw import draw
from protein_didi.core.request import SAMPLERS, ProgressCallback, steps_reporter
from protein_didi.text.pretrained import LoadedModel
from protein_didi.text.prompts import masked_blocks
from protein_didi.text.request import TextRequest

__all__ = ["SAMPLERS", "TextRequest", "decode_blocks", "generate", "generate_tokens"]


def generate_tokens(
    loaded: LoadedModel, request: TextRequest, progress: ProgressCallback | None = None
) -> torch.Tensor:
    """(num, length) token ids ``<bos> text <eos>``; unset sampler settings are the model's."""
    request = request.fitted(loaded)
    length = loaded.block_length if request.length is None else request.length
    device = next(loaded.model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(request.seed)
    n_batches = -(-request.num // request.batch_size)
    out = []
    for b in range(n_batches):
        n = min(request.batch_size, request.num - b * request.batch_size)
        z, fixed = (x.to(device) for x in masked_blocks(loaded.tokenizer, length, n))
        on_step = steps_reporter(progress, b * request.steps, n_batches * request.steps)
        z = draw(request, loaded.model, z, fixed, loaded.schedule, gen, on_step, loaded.discriminator)
        out.append(z.cpu())
    return torch.cat(out)


def decode_blocks(loaded: LoadedModel, tokens: torch.Tensor) -> list[str]:
    """Text between the fixed ``<bos>`` and ``<eos>`` of each block; inner ``<|endoftext|>`` marks a new document."""
    return [loaded.tokenizer.decode(row[1:-1].tolist()) for row in tokens]


def generate(loaded: LoadedModel, request: TextRequest, progress: ProgressCallback | None = None) -> list[str]:
    """Decoded samples of :func:`generate_tokens`."""
    return decode_blocks(loaded, generate_tokens(loaded, request, progress))
