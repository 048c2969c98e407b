"""The text domain on the same core: GPT-2-style BPE, MDLM/DUO DiT denoisers, packed text blocks.

Modules:
    ``tokenizer``      GPT-2 BPE (local folder or hub) or a byte-level BPE trained offline, saved with checkpoints
    ``data``           MDLM-style wrapping of documents into fixed-length ``<bos> … <eos>`` blocks
    ``model``          the MDLM/DUO diffusion transformer (adaLN time conditioning, rotary attention)
    ``pretrained``     save/load registry (``teacher``, ``student``, MDLM/DUO checkpoints)
    ``prompts``        all-[MASK] blocks for distillation
    ``generate``       sampling and decoding
    ``judge``          the independent autoregressive judge (generative perplexity)
    ``evaluate``       held-out NELBO, unigram baselines, per-sample token entropy
    ``report``         ``python -m protein_didi.report --domain text``
CLIs: ``python -m data_prep.text``, ``python -m protein_didi.train_teacher --domain text``,
``python -m protein_didi.train_judge --domain text``, ``python -m protein_didi.distill --domain text``,
``python -m protein_didi.sample --domain text``.
"""
