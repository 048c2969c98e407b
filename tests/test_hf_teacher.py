"""BERT-family masked LMs as teachers: the adapter against AntiBERTy's own model, and a tiny BERT through the core."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import make_tiny_bert
from transformers import BertConfig, BertForMaskedLM

from protein_didi.core.denoiser import NEG_INF
from protein_didi.core.didi import DidiConfig, DidiTrainer
from protein_didi.core.discriminator import Discriminator
from protein_didi.core.idlm import IdlmConfig, IdlmTrainer
from protein_didi.core.rgas import reward_gradient
from protein_didi.core.sampler import SamplerConfig, ancestral_sample
from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.protein.alphabet import ALPHABET, STANDARD_AA, InvalidSequenceError
from protein_didi.protein.generate import ProteinRequest, generate
from protein_didi.protein.hf_mlm import BertDenoiser, vocabulary_maps
from protein_didi.protein.pretrained import LoadedModel, ModelNotFoundError, load_model, save_model
from protein_didi.protein.prompts import ProteinPrompts
from protein_didi.sample import main as sample_main

# AntiBERTy's vocabulary order (antiberty/trained_models/vocab.txt): specials, then the 20 letters alphabetically
ANTIBERTY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *STANDARD_AA]
AA_PROJECT_IDS = torch.tensor([ALPHABET.esm.get_idx(a) for a in STANDARD_AA])


def tiny_bert(seed: int = 0) -> BertDenoiser:
    return make_tiny_bert(ANTIBERTY_VOCAB, num_layers=2, seed=seed)


def masked_batch() -> torch.Tensor:
    z = ALPHABET.encode(["EVQLVQSGAEVKKPGASVKV", "DIQMTQSPXSLSAS"])
    z[0, [2, 9, 15]] = ALPHABET.mask_id
    z[1, [4, 11]] = ALPHABET.mask_id
    return z


# --- vocabulary maps --------------------------------------------------------------------------------------------


def test_vocabulary_maps_follow_letters_and_roles():
    to_model, from_model, known = vocabulary_maps(ANTIBERTY_VOCAB)
    ids = {tok: i for i, tok in enumerate(ANTIBERTY_VOCAB)}
    assert to_model[ALPHABET.cls_id] == ids["[CLS]"] and to_model[ALPHABET.eos_id] == ids["[SEP]"]
    assert to_model[ALPHABET.pad_id] == ids["[PAD]"] and to_model[ALPHABET.mask_id] == ids["[MASK]"]
    for aa in STANDARD_AA:
        pid = ALPHABET.esm.get_idx(aa)
        assert to_model[pid] == from_model[pid] == ids[aa] and known[pid]
    for aa in "XBZUO":  # not in AntiBERTy's vocabulary: [UNK] in, never predicted out
        pid = ALPHABET.esm.get_idx(aa)
        assert to_model[pid] == ids["[UNK]"] and not known[pid]
    assert int(known.sum()) == 20
    with pytest.raises(ValueError, match="lacks special tokens"):
        vocabulary_maps([t for t in ANTIBERTY_VOCAB if t != "[SEP]"])
    with pytest.raises(ValueError, match="none of the 20 amino-acid letters"):
        vocabulary_maps(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"])


def test_output_is_normalised_over_known_letters_and_deterministic_in_train_mode():
    model = tiny_bert()
    z = masked_batch()
    out = model(z, torch.ones(2))
    assert out.shape == (*z.shape, ALPHABET.size)
    masked = z == ALPHABET.mask_id
    assert torch.allclose(out[masked][:, AA_PROJECT_IDS].exp().sum(-1), torch.ones(int(masked.sum())))
    assert (out[masked][:, ~model.allowed] <= NEG_INF / 2).all()  # X/B/Z/U/O and specials are never predicted
    model.train()  # dropout is off: trainers run copies in train mode, which must match eval
    assert torch.equal(model(z, torch.ones(2)), out)


# --- real AntiBERTy ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def antiberty():
    pytest.importorskip("antiberty")
    return load_model("antiberty")


@pytest.fixture(scope="module")
def antiberty_reference():
    """The package's own ``AntiBERTy`` class on its weights, fed by an HF tokenizer over the package's vocab.txt.

    ``AntiBERTyRunner`` itself does not run on transformers ≥ 5 (its model calls the removed
    ``init_weights`` path, and ``BertTokenizer(vocab_file=…)`` silently builds an empty vocabulary),
    so we build the same model class and tokenizer the way the runner means to.
    """
    pytest.importorskip("antiberty")
    from antiberty import AntiBERTy
    from transformers import BertTokenizer

    from protein_didi.protein.antiberty_weights import AntibertyWeightsMissing, resolve_antiberty_weights

    try:  # the same files under antiberty 0.1.3 (in its package) and 1.x (project cache, as with IgFold)
        weights = resolve_antiberty_weights()
    except AntibertyWeightsMissing as err:
        pytest.skip(str(err))
    CHECKPOINT_PATH, VOCAB_FILE = str(weights.folder), str(weights.vocab_file)

    class PackageModel(AntiBERTy):
        def init_weights(self) -> None:  # transformers ≥ 5: every weight is loaded right below
            pass

    model = PackageModel(BertConfig.from_pretrained(CHECKPOINT_PATH)).eval()
    state = torch.load(f"{CHECKPOINT_PATH}/pytorch_model.bin", map_location="cpu", weights_only=True)
    result = model.load_state_dict(state, strict=False)
    assert not result.missing_keys and set(result.unexpected_keys) <= {"bert.embeddings.position_ids"}
    return model, BertTokenizer(vocab=VOCAB_FILE, do_lower_case=False)


def test_adapter_matches_antiberty_package(antiberty, antiberty_reference):
    ref_model, tokenizer = antiberty_reference
    seqs = ["EVQLVESGGGLVQPGGSLRLSCAASGFTFSSYAMS", "DIQMTQSPSSLSASVGDRVTITCRAS"]
    masked = {0: [1, 5, 17, 30], 1: [3, 12, 20]}  # 0-based residue positions
    z = ALPHABET.encode(seqs)
    texts = []
    for row, seq in enumerate(seqs):
        letters = list(seq)
        for pos in masked[row]:
            z[row, pos + 1] = ALPHABET.mask_id
            letters[pos] = "[MASK]"
        texts.append(" ".join(letters))
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    assert enc["input_ids"].shape == z.shape
    with torch.no_grad():
        ours = antiberty.model(z, torch.ones(2))
        theirs = ref_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).prediction_logits
    model_letter_ids = torch.tensor([tokenizer.convert_tokens_to_ids(a) for a in STANDARD_AA])
    theirs = torch.log_softmax(theirs[..., model_letter_ids], -1)  # renormalised over the 20 amino acids
    for row, positions in masked.items():
        idx = torch.tensor(positions) + 1
        assert torch.allclose(ours[row, idx][:, AA_PROJECT_IDS], theirs[row, idx], atol=1e-5)
    assert antiberty.info["max_residues"] == 510 and antiberty.schedule.name == "loglinear"


def test_antiberty_samples_in_eight_steps(antiberty):
    seqs = generate(antiberty, ProteinRequest(num=2, length=24, nfe=8, seed=0))
    assert [len(s) for s in seqs] == [24, 24] and all(set(s) <= set(STANDARD_AA) for s in seqs)


def test_missing_antiberty_package_is_one_line(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "antiberty" else real(name, *a))
    monkeypatch.delenv("ANTIBERTY_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("PROTEIN_DIDI_CACHE", str(tmp_path))  # an empty project cache: nowhere left to look
    with pytest.raises(ModelNotFoundError, match=r"pip install -e \.\[antibody\]"):
        load_model("antiberty")


# --- a tiny BERT through the real core --------------------------------------------------------------------------


def test_ancestral_sampling_and_length_limit():
    model = tiny_bert()
    z = ALPHABET.masked_template([12, 12])
    out = ancestral_sample(
        model, z, ALPHABET.special_positions(z), LogLinearSchedule(), SamplerConfig(4), torch.Generator().manual_seed(0)
    )
    assert all(len(s) == 12 and set(s) <= set(STANDARD_AA) for s in ALPHABET.decode(out))
    loaded = LoadedModel(model, LogLinearSchedule(), "tiny", {"max_residues": model.max_residues})
    assert model.max_residues == 38
    with pytest.raises(InvalidSequenceError, match="exceeds this model's 38 residues"):
        generate(loaded, ProteinRequest(num=1, length=39, nfe=2))


def test_soft_one_hot_features_equal_hard_and_rgas_gradient_is_correct_at_masks():
    model = tiny_bert()
    z = masked_batch()
    onehot = torch.nn.functional.one_hot(z, ALPHABET.size).float()
    assert torch.allclose(model.features(z, None, onehot), model.features(z), atol=1e-6)

    torch.manual_seed(1)
    disc = Discriminator(tiny_bert()).eval()
    generated = ~ALPHABET.special_positions(z)
    grad = reward_gradient(disc, z, torch.ones(2), generated, ALPHABET.size)
    masked = z == ALPHABET.mask_id
    assert grad[masked][:, AA_PROJECT_IDS].abs().amin(-1).gt(0).all()
    # chain rule by hand: ∂G/∂onehot[p] = ∂G/∂embedding · (word embedding of the model token p maps to)
    backbone = disc.backbone
    emb = backbone.mlm.bert.embeddings.word_embeddings(backbone.to_model[z]).detach().requires_grad_(True)
    h = backbone.mlm.bert(inputs_embeds=emb, attention_mask=(z != ALPHABET.pad_id).long()).last_hidden_state
    logits = disc.head(h).squeeze(-1)
    region = masked & generated
    reward = -((logits * region).sum(-1) / region.sum(-1))
    (g_emb,) = torch.autograd.grad(reward.sum(), emb)
    table = backbone.mlm.bert.embeddings.word_embeddings.weight[backbone.to_model]  # (33, H)
    assert torch.allclose(grad, g_emb @ table.T, atol=1e-6)


def test_didi_and_idlm_steps_run_on_the_adapter():
    prompts = ProteinPrompts([12, 16])
    common = dict(batch_size=4, teacher_nfe=4, bank_size=8, lr_student=1e-3, lr_aux=1e-3, ema=0.5)
    exported: dict = {}

    def exporter(out, student, aux, info):
        exported.update(student=student, aux=aux)

    didi = DidiTrainer(
        tiny_bert(), LogLinearSchedule(), prompts, DidiConfig(**common, student_nfe=4, disc_warmup=0), exporter
    )
    assert isinstance(didi.aux, Discriminator) and isinstance(didi.aux.backbone, BertDenoiser)
    before = {k: v.clone() for k, v in didi.student.state_dict().items()}
    metrics = didi.train_step(0)
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert any(not torch.equal(v, before[k]) for k, v in didi.student.state_dict().items())

    idlm = IdlmTrainer(tiny_bert(), LogLinearSchedule(), prompts, IdlmConfig(**common), exporter)
    fake_before = {k: v.clone() for k, v in idlm.aux.state_dict().items()}
    metrics = idlm.train_step(0)
    assert metrics["fake_loss"] > 0
    assert any(not torch.equal(v, fake_before[k]) for k, v in idlm.aux.state_dict().items())


def test_save_load_round_trip_with_discriminator_is_bit_equal_in_fp16(tmp_path):
    model = tiny_bert()
    torch.manual_seed(2)
    disc = Discriminator(tiny_bert(seed=3))
    disc(masked_batch(), torch.ones(2))  # one power iteration, so spectral-norm buffers are non-trivial
    disc.eval()
    save_model(
        tmp_path / "m",
        model,
        LogLinearSchedule(),
        "student-didi",
        {"max_residues": 38},
        {"discriminator": disc.state_dict()},
    )
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["family"] == "bert" and cfg["vocabulary"] == ANTIBERTY_VOCAB
    assert cfg["architecture"]["hidden_dropout_prob"] == 0.0
    loaded = load_model(str(tmp_path / "m"))
    assert isinstance(loaded.model, BertDenoiser) and loaded.role == "student-didi"
    for k, v in model.mlm.state_dict().items():
        assert torch.equal(loaded.model.mlm.state_dict()[k], v.half().float()), k
    for k, v in disc.state_dict().items():
        assert torch.equal(loaded.discriminator.state_dict()[k], v.half().float() if v.is_floating_point() else v), k
    assert isinstance(loaded.discriminator.backbone, BertDenoiser)
    z = masked_batch()
    rounded = tiny_bert()
    rounded.mlm.load_state_dict({k: v.half().float() for k, v in model.mlm.state_dict().items()})
    assert torch.equal(loaded.model(z, torch.ones(2)), rounded(z, torch.ones(2)))
    # the CLI reaches the adapter's length limit as a one-line error
    assert sample_main(["--model", str(tmp_path / "m"), "--num", "1", "--length", "39", "--nfe", "2"]) == 2


def test_transformers_bert_folder_loads_like_protbert(tmp_path):
    """ProtBert-style folders (``save_pretrained`` + ``vocab.txt``) load as teachers by path."""
    torch.manual_seed(0)
    source = tiny_bert()
    mlm = BertForMaskedLM(source.mlm.config)
    mlm.load_state_dict(source.mlm.state_dict())
    mlm.save_pretrained(tmp_path / "bert")
    (tmp_path / "bert" / "vocab.txt").write_text("\n".join(ANTIBERTY_VOCAB) + "\n")
    loaded = load_model(str(tmp_path / "bert"))
    z = masked_batch()
    assert torch.equal(loaded.model(z, torch.ones(2)), source(z, torch.ones(2)))
    assert loaded.info["max_residues"] == 38
