"""Prepare a text corpus: ``python -m data_prep.text --out data/text-pydoc``.

Sources (``--source``):
    ``pydoc``        (default, offline) the English reStructuredText sources of the
                     Python documentation that Debian's ``python3.11-doc`` package
                     ships in /usr/share/doc/python3.11/html/_sources; markup, code
                     blocks and tables are stripped so the prose remains.
    ``openwebtext``  OpenWebText through ``datasets`` (needs the hub; ``--max-docs`` caps it).
    PATH             a folder of ``.txt``/``.rst``/``.md`` files (one document each) or one text file
                     (documents separated by blank lines).

Documents are split into train/valid/test by a hash of their name (stable when
files are added), tokenised with ``--tokenizer`` (``bpe``: a byte-level BPE of
``--vocab-size`` trained on the train split — the offline default; ``gpt2``:
GPT-2's BPE from the hub; or a folder holding GPT-2's ``tokenizer.json``), and
written as ``<|endoftext|>``-separated token streams that
:mod:`protein_didi.text.data` wraps into blocks.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from protein_didi.core.checkpoint import atomic_write, save_json
from protein_didi.text.data import FORMAT, SPLITS, TextDataError, document_stream, stream_dtype
from protein_didi.text.tokenizer import TextTokenizer, TokenizerError, load_gpt2, train_bpe

PYDOC_GLOB = "/usr/share/doc/python3*/html/_sources"
TEXT_SUFFIXES = (".txt", ".rst", ".md")
MIN_DOC_CHARS = 200

_ROLE = re.compile(r":[\w:+.-]+:`(?:[^`<]*?<)?!?~?([^`<>]*?)>?`")  # :func:`~a.b <x>` → x, :keyword:`!if` → if
_LINK = re.compile(r"`([^`<]+?)\s*<[^`>]+>`_{1,2}")  # `text <url>`_ → text
_LITERAL = re.compile(r"``([^`]+)``")
_REF = re.compile(r"`([^`]+)`_{0,2}")
_FOOT = re.compile(r"\s*\[[#*\w-]+\]_")
_SECTION = re.compile(r"^([=\-~^\"'`#*+.:_])\1{2,}\s*$")
_DIRECTIVE = re.compile(r"^\s*\.\.\s")
_NAMED_DIRECTIVE = re.compile(r"^\s*\.\.\s+([\w:-]+)::")
# directives whose indented body is prose (API descriptions, admonitions); others (code, tables, indexes) are dropped
PROSE_DIRECTIVES = {
    "function", "method", "class", "attribute", "data", "exception", "decorator", "decoratormethod",
    "classmethod", "staticmethod", "describe", "module", "opcode", "cmdoption", "option", "envvar",
    "note", "warning", "seealso", "tip", "important", "caution", "attention", "hint", "admonition",
    "versionadded", "versionchanged", "deprecated", "deprecated-removed", "impl-detail", "glossary",
    "macro", "type", "member", "var", "audit-event", "topic", "sidebar",
    "rubric", "centered",
}  # fmt: skip
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+\.|#\.)\s+")
_FIELD = re.compile(r"^:[\w ]+:(\s|$)")  # :param x: …, :version: …
_TABLE_BORDER = re.compile(r"^\s*=+( +=+)+\s*$")  # simple-table rule


def rst_to_prose(text: str) -> str:
    """English prose of a reST document: paragraphs of running text, inline roles reduced to their words.

    Dropped: directives and comments (``.. x::`` with their indented body),
    literal blocks (the indented block after ``::``), doctest lines, tables,
    section underlines and field lists. Kept: paragraphs, list items and
    section titles, each separated by a blank line.
    """
    out: list[str] = []
    para: list[str] = []
    skip_indent: int | None = None  # skipping an indented block deeper than this
    in_table = False
    lines = text.splitlines()

    def flush() -> None:
        if para:
            joined = " ".join(s.strip() for s in para)
            joined = _LITERAL.sub(r"\1", _LINK.sub(r"\1", _ROLE.sub(r"\1", joined)))
            joined = _FOOT.sub("", _REF.sub(r"\1", joined))
            joined = re.sub(r"\s+", " ", joined.replace("\\", "")).strip()
            if joined.endswith("::"):
                joined = joined[:-1]
            if len(joined) > 1 and re.search(r"[A-Za-z]{2}", joined):
                out.append(joined)
            para.clear()

    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if skip_indent is not None:
            if not stripped or indent > skip_indent:
                continue
            skip_indent = None
        if in_table or _TABLE_BORDER.match(line):
            flush()
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            in_table = not (in_table and _TABLE_BORDER.match(line) and not nxt)
            continue
        if not stripped:
            flush()
            continue
        if _SECTION.match(stripped):  # over/underline: the previous line was a title
            continue
        directive = _NAMED_DIRECTIVE.match(line)
        if directive and directive.group(1).split(":")[-1] in PROSE_DIRECTIVES:
            flush()  # drop the signature line, read the body as ordinary paragraphs
            continue
        if _DIRECTIVE.match(line) or stripped.startswith((">>>", "...", "|", "+-", "+=")) or _FIELD.match(stripped):
            flush()
            skip_indent = indent
            continue
        if _BULLET.match(line):
            flush()
            line = _BULLET.sub("", line)
        para.append(line)
        if stripped.endswith("::"):  # a literal block follows
            flush()
            nxt = next((ln for ln in lines[i + 1 :] if ln.strip()), "")
            skip_indent = indent if len(nxt) - len(nxt.lstrip()) > indent else None
    flush()
    return "\n\n".join(out)


def pydoc_documents() -> Iterator[tuple[str, str]]:
    """(name, prose) of every reST source shipped by python3.X-doc."""
    roots = sorted(Path("/").glob(PYDOC_GLOB.lstrip("/")))
    if not roots:
        raise TextDataError(
            f"no Python documentation sources at {PYDOC_GLOB}; install them (apt-get install python3.11-doc) "
            "or give --source PATH"
        )
    root = roots[-1]
    for path in sorted(root.rglob("*.rst.txt")):
        yield str(path.relative_to(root)), rst_to_prose(path.read_text(encoding="utf-8", errors="replace"))


def path_documents(source: Path) -> Iterator[tuple[str, str]]:
    if source.is_file():
        text = source.read_text(encoding="utf-8", errors="replace")
        for k, doc in enumerate(re.split(r"\n\s*\n", text)):
            yield f"{source.name}:{k}", doc.strip()
        return
    if not source.is_dir():
        raise TextDataError(f"--source {source} is neither pydoc, openwebtext, a folder nor a text file")
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.name.endswith(TEXT_SUFFIXES))
    if not files:
        raise TextDataError(f"{source} holds no {'/'.join(TEXT_SUFFIXES)} files")
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        yield str(path.relative_to(source)), rst_to_prose(text) if path.name.endswith((".rst", ".rst.txt")) else text


def openwebtext_documents(max_docs: int | None) -> Iterator[tuple[str, str]]:
    """OpenWebText documents streamed through ``datasets`` (the paper's corpus)."""
    try:
        import datasets
    except ImportError:
        raise TextDataError("--source openwebtext needs the datasets package (pip install datasets)") from None
    try:
        ds = datasets.load_dataset("openwebtext", split="train", streaming=True)
        for k, row in enumerate(ds):
            if max_docs is not None and k >= max_docs:
                return
            yield f"owt-{k:08d}", row["text"]
    except Exception as err:  # hub errors come in many types
        first = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise TextDataError(f"cannot read openwebtext ({first}); use --source pydoc or a local folder") from None


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def split_of(name: str, valid_frac: float, test_frac: float) -> str:
    """Stable split by hash of the document name."""
    u = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 2**32
    return "valid" if u < valid_frac else "test" if u < valid_frac + test_frac else "train"


def build_tokenizer(kind: str, train_texts: list[str], vocab_size: int, source: str) -> TextTokenizer:
    if kind == "bpe":
        return train_bpe(train_texts, vocab_size, source=f"byte-level BPE ({vocab_size}) trained on {source}")
    return load_gpt2("gpt2" if kind == "gpt2" else kind)


def prepare(
    source: str,
    out: Path,
    tokenizer: str = "bpe",
    vocab_size: int = 4096,
    valid_frac: float = 0.05,
    test_frac: float = 0.05,
    max_docs: int | None = None,
) -> dict:
    """Read, clean, split, tokenise and write a corpus; returns its ``meta.json``."""
    started = time.time()
    if source == "pydoc":
        docs, described = pydoc_documents(), "python3.11-doc reStructuredText sources (Debian package)"
        origin = PYDOC_GLOB
    elif source == "openwebtext":
        docs, described, origin = openwebtext_documents(max_docs), "OpenWebText (datasets: openwebtext)", "openwebtext"
    else:
        docs, described, origin = path_documents(Path(source)), f"text files under {source}", str(Path(source))
    by_split: dict[str, list[str]] = {s: [] for s in SPLITS}
    for k, (name, text) in enumerate(docs):
        if max_docs is not None and k >= max_docs:
            break
        text = text.strip()
        if len(text) >= MIN_DOC_CHARS:
            by_split[split_of(name, valid_frac, test_frac)].append(text)
    if not by_split["train"] or not by_split["valid"]:
        raise TextDataError(
            f"{described}: too few documents of ≥ {MIN_DOC_CHARS} characters "
            f"(train {len(by_split['train'])}, valid {len(by_split['valid'])})"
        )
    tok = build_tokenizer(tokenizer, by_split["train"], vocab_size, described)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(out)
    dtype = stream_dtype(tok.mask_id)
    splits = {}
    for split, texts in by_split.items():
        stream = document_stream(tok.encode_batch(texts), tok.eos_id).astype(dtype)
        atomic_write(out / f"{split}.bin", lambda p, s=stream: s.tofile(p))
        splits[split] = {
            "documents": len(texts),
            "characters": sum(len(t) for t in texts),
            "words": sum(len(t.split()) for t in texts),
            "tokens": len(stream),
        }
        if split == "train":
            counts = np.bincount(stream.astype(np.int64), minlength=tok.vocab_size)
            atomic_write(out / "unigram.npy", lambda p, c=counts: p.write_bytes(_npy_bytes(c)))
        if split == "test":  # the held-out prose as text, the natural reference for reports
            atomic_write(out / "test.txt", lambda p, t=texts: p.write_text("\n\n<|endoftext|>\n\n".join(t)))
    meta = {
        "format": FORMAT,
        "source": described,
        "origin": origin,
        "tokenizer": tok.record(),
        "splits": splits,
        "split_rule": {"by": "sha256(document name)", "valid": valid_frac, "test": test_frac},
        "seconds": round(time.time() - started, 1),
    }
    save_json(out / "meta.json", meta)
    return meta


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m data_prep.text", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--source", default="pydoc", help="pydoc (default), openwebtext, or a folder / text file")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--tokenizer", default="bpe", help="bpe (train offline, default), gpt2 (hub) or a folder")
    p.add_argument("--vocab-size", type=int, default=4096, help="BPE vocabulary without [MASK] (default 4096)")
    p.add_argument("--valid-frac", type=float, default=0.05, help="fraction of documents held out for validation")
    p.add_argument("--test-frac", type=float, default=0.05, help="fraction of documents held out for testing")
    p.add_argument("--max-docs", type=int, default=None, help="read at most this many documents")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if not (0 < args.valid_frac < 1 and 0 <= args.test_frac < 1 and args.valid_frac + args.test_frac < 1):
            raise TextDataError("--valid-frac and --test-frac must be fractions summing to less than 1")
        meta = prepare(
            args.source, args.out, args.tokenizer, args.vocab_size, args.valid_frac, args.test_frac, args.max_docs
        )
    except (TextDataError, TokenizerError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sp = meta["splits"]
    print(
        f"{meta['source']}: "
        + ", ".join(f"{s} {v['documents']} docs / {v['words']} words / {v['tokens']} tokens" for s, v in sp.items())
        + f"; tokenizer {meta['tokenizer']['kind']} ({meta['tokenizer']['vocab_size']}) → {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
