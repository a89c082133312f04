"""``animstudio plan``: a storyboard from a request (one shot at a time, or in stages), or episodes from a text
(``--from``, :mod:`.cli_novel`), by a local GGUF model or an OpenAI-compatible server, drawing on the project library
when there is one (:mod:`.cli_library`)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .cli_common import _emit


def add_plan_commands(sub) -> None:
    p = sub.add_parser("plan", help="write a storyboard from a request with an LLM (local GGUF or OpenAI-compatible)")
    p.add_argument("request", nargs="?", default="",
                   help='what the film is about, e.g. "a 4-shot short where a keeper saves a ship"')
    p.add_argument("-o", "--output", help="storyboard JSON to write (default: standard output); with --from: the "
                                          "folder for episode-01.json, episode-02.json, …")
    p.add_argument("--from", dest="from_text", metavar="TEXT",
                   help="a story (plain text or Markdown, UTF-8) to make episodes from: its chapters, a synopsis per "
                        "episode, one cast shared by name, a storyboard per episode (needs -o DIR)")
    p.add_argument("--episodes", type=int, metavar="N",
                   help="with --from: how many episodes (default: one per chapter)")
    p.add_argument("--series", help="with --from: the series' name (default: the text's title, else its file name)")
    p.add_argument("--library", metavar="FILE",
                   help="plan with this project library: the characters and places the request names or is closest "
                        "to are reused (ids, looks, voices), and its style guide (default: animstudio-library.db "
                        "beside the output, when there is one; implies --stages)")
    p.add_argument("--backend", default="llama_cpp", choices=["llama_cpp", "openai"])
    p.add_argument("--model", required=True, help="GGUF file (llama_cpp; a path, or a name in models/LLM or "
                                                   "$ANIMSTUDIO_LLM_DIR) or the server's model name (openai)")
    p.add_argument("--base-url", dest="base_url", help="OpenAI-compatible server (key from $OPENAI_API_KEY)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shots", type=int, help="at most this many shots (default 8); with --stages: exactly this many "
                                              "(default: the number the request asks for, else 4)")
    p.add_argument("--stages", action="store_true",
                   help="plan in stages a small model can follow (outline → shots → dialogue), each held to what the "
                        "stage before decided; the stages are kept beside the storyboard (OUT.plan.json)")
    p.add_argument("--from-plan", dest="from_plan", metavar="PLAN",
                   help="go on from a saved plan (OUT.plan.json, its outline perhaps edited): the later stages "
                        "follow it (implies --stages)")
    p.add_argument("--checkpoint", default="sd15.safetensors", help="project.checkpoint for the generated shots")
    p.add_argument("--repeat-penalty", dest="repeat_penalty", type=float, default=1.0,
                   help="llama_cpp: above 1 a small model repeats itself less (Gemma 3 270M in stages: 1.2)")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.set_defaults(func=cmd_plan)


def cmd_plan(args) -> int:
    """A storyboard from a request, by a local GGUF model or an OpenAI-compatible server; validated before writing."""
    from .translator.planning.backends import PlanError, make_backend
    from .translator.planning.planner import plan_storyboard

    if args.from_text or args.episodes is not None:
        from .cli_novel import plan_episodes

        return plan_episodes(args)
    from .cli_library import recall_for_request

    bible, style = recall_for_request(args, args.request or "")  # the project library's people, places and look
    backend = make_backend(args.backend, args.model, args.base_url or "", args.repeat_penalty)
    plan = None
    if args.stages or args.from_plan or bible:
        from .common.jsonio import read_json
        from .translator.planning.stages import Stages, plan_in_stages, stages_json

        saved = Stages.from_json(read_json(args.from_plan, error=PlanError), args.from_plan) if args.from_plan else None
        board, stages = plan_in_stages(args.request or "", backend, seed=args.seed, shots=args.shots,
                                       checkpoint=args.checkpoint, stages=saved, bible=bible)
        board["project"]["style"] = style or board["project"]["style"]
        plan = stages_json(stages)
    else:
        board = plan_storyboard(args.request, backend, seed=args.seed, shots_hint=args.shots,
                                checkpoint=args.checkpoint)
    text = json.dumps(board, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        kept = ""
        if plan is not None:  # the stages' answers beside it: edit the outline, plan again with --from-plan
            plan_file = Path(args.output).with_suffix(".plan.json")
            plan_file.write_text(plan, encoding="utf-8")
            kept = f"; the stages in {plan_file} (edit its outline, then: animstudio plan --from-plan {plan_file})"
        _emit(args, {"ok": True, "file": args.output, "shots": len(board["shots"])},
              f"wrote {args.output}: {len(board['shots'])} shot(s){kept}; check it with: animstudio validate "
              f"{args.output}")
    else:
        sys.stdout.write(text)
    return 0
