"""No value of a planned storyboard is a copy of what the model was told (issue 21, item 1): the schema's field
descriptions, the system prompt, a stage's worked example. Gemma 3 270M once set ``style`` to "visual style words for
an image model", the one-shot prompt's own words; what the request itself says stays."""
from __future__ import annotations

import json

import jsonschema

from animstudio.translator.planning.copies import drop_copies, is_copy, schema_descriptions
from animstudio.translator.planning.planner import plan_storyboard
from animstudio.translator.planning.stages import EXAMPLE_OUTLINE, plan_in_stages


class Replies:
    """Answers each call with the next canned reply, checked against the call's schema."""

    def __init__(self, *replies):
        self.replies = list(replies)

    def describe(self):
        return "a copying model"

    def complete_json(self, system, user, schema, seed=0):
        reply = self.replies.pop(0)
        jsonschema.validate(reply, schema)
        return json.dumps(reply, ensure_ascii=False)


def test_the_one_shot_planner_replaces_what_it_copied_from_its_prompt_and_the_schema():
    checkpoint = next(d for d in schema_descriptions() if d.startswith("Checkpoint file in ComfyUI"))
    reply = {"title": "The Keeper", "style": "visual style words for an image model",
             "characters": [{"id": "mara", "name": "Mara", "description": "name, short visual description"},
                            {"id": "tom", "name": "Tom", "description": "an old man with a lantern by the sea"}],
             "scenes": [{"id": "shore", "location": "the shore", "time_of_day": "night"}],
             "shots": [{"id": "s1", "scene": "shore", "characters": ["mara"], "description": checkpoint,
                        "camera": "wide", "move": "static", "duration": 3, "transition": "cut",
                        "dialogue": [{"character": "mara", "text": "the language of the request", "emotion": "neutral"},
                                     {"character": "mara", "text": "The lamp is out tonight!", "emotion": "afraid"}]},
                       {"id": "s2", "scene": "shore", "characters": ["tom"], "description": "Tom lights the lamp",
                        "camera": "medium", "move": "zoom_in", "duration": 3, "transition": "cut", "dialogue": []}]}
    board = plan_storyboard("A two-shot film: Mara and an old man with a lantern by the sea.", _Any(reply))
    assert board["project"]["style"] == "" and board["project"]["title"] == "The Keeper"
    assert board["characters"]["mara"]["description"] == "Mara"          # "name, short visual description": the prompt's
    assert board["characters"]["tom"]["description"] == "an old man with a lantern by the sea"  # the request's words
    assert board["shots"][0]["description"] == "shot 1"                  # the schema's description of checkpoint
    assert [l["text"] for l in board["shots"][0]["dialogue"]] == ["The lamp is out tonight!"]


def test_the_staged_planner_replaces_a_beat_copied_from_its_worked_example():
    outline = {"title": "Pond", "style": "watercolor, warm evening light",
               "characters": [{"name": "Mara", "look": "girl in a red coat"}, {"name": "Pip", "look": "frog"}],
               "places": [{"name": "the pond", "time": "day"}],
               "beats": [EXAMPLE_OUTLINE["beats"][0], "Pip jumps onto a lily pad by Mara."]}
    cast = {"shots": [{"who": ["Mara"], "place": "the pond", "framing": "wide", "move": "static"},
                      {"who": ["Mara", "Pip"], "place": "the pond", "framing": "medium", "move": "static"}]}
    lines = {"lines": [[{"who": "Mara", "text": "Let me go, and I will grant you a wish.", "emotion": "happy"}],
                       [{"who": "Pip", "text": "Hop on, Mara!", "emotion": "happy"}]]}
    board, _ = plan_in_stages("A two-shot film: Mara, a girl in a red coat, meets Pip the frog at the pond.",
                              Replies(outline, cast, lines))
    assert [s["description"] for s in board["shots"]] == ["shot 1", "Pip jumps onto a lily pad by Mara."]
    assert board["project"]["style"] != "watercolor, warm evening light"    # the example's style
    assert [l["text"] for s in board["shots"] for l in s.get("dialogue", [])] == ["Hop on, Mara!"]
    looks = {c["name"]: c["description"] for c in board["characters"].values()}
    assert looks["Mara"] == "girl in a red coat"                             # the request says it


def test_short_values_and_the_requests_words_are_never_copies():
    told = ["Give the film a title and a visual style for an image model"]
    assert is_copy("a visual style for an image", told)
    assert not is_copy("visual style", told)                                 # fewer than four words
    assert not is_copy("a visual style for an image", told, request="I want a visual style for an image model")
    board = {"project": {"title": "x", "style": "a visual style for an image"}, "shots": []}
    assert drop_copies(board, told, default_style="plain") == ["$.project.style"] and board["project"]["style"] == "plain"


class _Any:
    """The one-shot planner's model: a single canned reply (its schema is loose; repair does the rest)."""

    def __init__(self, reply):
        self.reply = reply

    def describe(self):
        return "a copying model"

    def complete_json(self, system, user, schema, seed=0):
        return json.dumps(self.reply)
