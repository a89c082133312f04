"""How well the project library finds an entry by a paraphrase of it, in English and the other seed languages.

    python bench/library_recall_bench.py [--data bench/data/library_recall.json] [-k 5]

The data file plants a series bible (characters, places, props, style notes, shots and lines: 60 targets and
160+ near-neighbour distractors of the same world) and, for each target, paraphrased queries in English, Chinese
and Russian (and Korean and Italian for some) that avoid its name and most of its words. The bench builds a real
library file (translator/library, the USE multilingual v3 vectors), asks every query over ALL entries, and prints
recall@1 and recall@k per language, and the time to embed the entries and to answer a query. Figures only.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from animstudio.translator.library.store import Entry, Library

DATA = Path(__file__).with_name("data") / "library_recall.json"


def measure(data: dict, k: int = 5) -> dict:
    """Recall per language over a fresh library of ``data``'s entries: {"per_language": {lang: [queries, top-1,
    top-k]}, "misses": [(lang, query, target, got)], "put_seconds", "query_ms"}."""
    entries = [Entry(e["kind"], e["key"], e["text"], e.get("name", e["key"]), "bench") for e in data["entries"]]
    with tempfile.TemporaryDirectory() as folder, Library(Path(folder) / "bench.db", create=True) as library:
        start = time.perf_counter()
        library.put(entries)
        put_seconds = time.perf_counter() - start
        found = defaultdict(lambda: [0, 0, 0])  # language → [queries, top-1, top-k]
        misses = []
        start = time.perf_counter()
        for q in data["queries"]:
            keys = [h.entry.key for h in library.search(q["query"], k=k)]
            row = found[q["lang"]]
            row[0] += 1
            row[1] += bool(keys) and keys[0] == q["target"]
            row[2] += q["target"] in keys
            if q["target"] not in keys:
                misses.append((q["lang"], q["query"], q["target"], keys[:3]))
        query_ms = (time.perf_counter() - start) / max(1, len(data["queries"])) * 1000
    return {"entries": len(entries), "per_language": dict(found), "misses": misses, "put_seconds": put_seconds,
            "query_ms": query_ms}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--misses", action="store_true", help="print each query that missed its target")
    args = parser.parse_args(argv)
    data = json.loads(Path(args.data).read_text(encoding="utf-8"))
    result = measure(data, args.k)
    found, n_entries = result["per_language"], result["entries"]
    print(f"library: {n_entries} entries ({n_entries / result['put_seconds']:.0f} embedded/s, "
          f"{result['put_seconds']:.2f} s), {len(data['queries'])} paraphrased queries, {result['query_ms']:.1f} ms each")
    total = [sum(r[i] for r in found.values()) for i in range(3)]
    for lang, (n, top1, topk) in sorted(found.items()) + [("all", total)]:
        print(f"  {lang:4} {n:4} queries  recall@1 {top1 / n:.3f}  recall@{args.k} {topk / n:.3f}")
    if args.misses:
        for lang, query, target, keys in result["misses"]:
            print(f"  miss [{lang}] {query!r} → wanted {target}, got {keys}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
