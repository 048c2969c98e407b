"""Domain-agnostic masked discrete diffusion: schedules, loss, samplers, trainers.

Nothing in this package knows about proteins or text: a domain plugs in a
:class:`~protein_didi.core.denoiser.Denoiser`, a mask id and the positions that
must never be noised (special tokens, padding, motifs).
"""
