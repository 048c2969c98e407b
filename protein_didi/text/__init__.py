"""The text domain on the same core: GPT-2-style BPE, MDLM/DUO DiT denoisers, packed text blocks.

Modules (the protein domain has the same names where the concept is shared):
    ``tokenizer``      GPT-2 BPE (local folder or hub) or a byte-level BPE trained offline, saved with checkpoints
    ``data``           MDLM-style wrapping of documents into fixed-length ``<bos> … <eos>`` blocks
    ``model``          the MDLM/DUO diffusion transformer (adaLN time conditioning, rotary attention)
    ``pretrained``     save/load registry (``teacher``, ``student``, MDLM/DUO checkpoints)
    ``prompts``        all-[MASK] blocks for distillation
    ``request``        what to sample (:class:`~protein_didi.text.request.TextRequest`)
    ``generate``       sampling and decoding
    ``judge``          the independent autoregressive judge (generative perplexity)
    ``evaluate``       held-out NELBO, unigram baselines, per-sample token entropy
Command bodies (``python -m protein_didi.<command> --domain text`` dispatches to them):
    ``sample``, ``distill``, ``train_teacher``, ``train_judge``; the report's is :mod:`protein_didi.report.text`,
    beside the protein report; data: ``python -m data_prep.text``.
"""
