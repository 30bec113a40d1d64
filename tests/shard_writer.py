"""A small valid shard directory written directly, for tests that need data but no Ray."""

from __future__ import annotations


def write_shards(root, groups=("code", "prose"), *, seq_len: int = 17, rows: int = 24, vocab_size: int = 64):
    """A small valid shard directory written directly (manifest, checksums, parquet; no Ray, no tokenizer
    training): random token windows per (split, group).  Returns the directory."""
    from pathlib import Path

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from raymix.data.manifest import FileEntry, GroupSplitStats, Manifest, file_sha256
    from raymix.data.tokenizer import TokenizerInfo

    root = Path(root)
    rng = np.random.default_rng(0)
    stats, files = {}, []
    for split in ("train", "val", "test"):
        stats[split] = {}
        for g in groups:
            d = root / split / f"group={g}"
            d.mkdir(parents=True, exist_ok=True)
            flat = rng.integers(0, vocab_size - 1, size=rows * seq_len).astype(np.int32)
            table = pa.table({"input_ids": pa.FixedSizeListArray.from_arrays(pa.array(flat), seq_len),
                              "group": pa.array([g] * rows)})
            path = d / "part-00000.parquet"
            pq.write_table(table, path)
            files.append(FileEntry(path=str(path.relative_to(root)), split=split, group=g, rows=rows,
                                   sha256=file_sha256(path)))
            stats[split][g] = GroupSplitStats(documents=rows, tokens=rows * seq_len, sequences=rows)
    Manifest(groups=sorted(groups), seq_len=seq_len, tokenizer=TokenizerInfo(vocab_size, vocab_size - 1, "<eos>", "0" * 64),
             stats=stats, files=files, sources={"kind": "test"}).save(root)
    return root
