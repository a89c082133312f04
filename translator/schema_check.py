"""Storyboard schema checking, with each violation turned into a plain sentence at its JSON path.

jsonschema's own messages describe the schema ("-1 is not valid under any of the given schemas");
users need to hear what was expected where ("$.shots[2].duration: expected a number of seconds > 0
or "fit_to_dialogue", got -1"), with a did-you-mean for typos in property names and enum values.
"""
from __future__ import annotations

import difflib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..common.errors import Problem
from ..common.jsonio import json_path

SCHEMA_PATH = Path(__file__).with_name("schema") / "storyboard.v1.schema.json"
FIT_TO_DIALOGUE = "fit_to_dialogue"


@lru_cache(maxsize=1)
def storyboard_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def schema_problems(data: Any) -> list[Problem]:
    """Every schema violation, as a problem with its JSON path and a plain-words message."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(storyboard_schema())
    problems = [Problem(json_path(err.absolute_path), _explain(err)) for err in validator.iter_errors(data)]
    return sorted(set(problems), key=lambda p: (p.where, p.message))


def without_schema_problems(data: Any) -> Any | None:
    """A copy of ``data`` with every value the schema refuses left out (a bad width falls back to its default, an
    unknown property goes), so the checks after the schema can still run and report in the same pass; None when
    that cannot be done safely (a required property missing, an item of a list refused)."""
    import copy

    import jsonschema

    validator = jsonschema.Draft202012Validator(storyboard_schema())
    cleaned = copy.deepcopy(data)
    for _ in range(3):
        errors = list(validator.iter_errors(cleaned))
        if not errors:
            return cleaned
        for err in errors:
            path = list(err.absolute_path)
            if err.validator == "required" or not path and err.validator != "additionalProperties":
                return None
            try:  # an earlier fix of this round may have taken the value away already: the next round sees
                if err.validator == "additionalProperties":
                    target = _at(cleaned, path)
                    allowed = err.schema.get("properties", {})
                    for key in [k for k in target if k not in allowed] if isinstance(target, dict) else ():
                        del target[key]
                    continue
                parent = _at(cleaned, path[:-1])
            except (KeyError, IndexError, TypeError):
                continue
            if not isinstance(parent, dict):
                return None
            parent.pop(path[-1], None)
    return None


def _at(data: Any, path: list) -> Any:
    for part in path:
        data = data[part]
    return data


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def close_match(word: str, options) -> str:
    match = difflib.get_close_matches(str(word), [str(o) for o in options], n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _explain(err) -> str:
    """Turn one jsonschema error into a sentence that says what was expected."""
    kind, schema, value = err.validator, err.schema, err.instance
    if kind == "required":
        missing = re.match(r"'(.*)' is a required property", err.message)
        return f"missing required property {missing.group(1)!r}" if missing else err.message
    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        return "; ".join(f"unknown property {e!r}{close_match(e, allowed)}" for e in extra) or err.message
    if kind == "type":
        return f"expected {schema['type']}, got {_json_type(value)} {json.dumps(value)[:60]}"
    if kind == "enum":
        return (f"expected one of {', '.join(map(str, schema['enum']))}; got {json.dumps(value)[:60]}"
                + close_match(value, schema["enum"]))
    if kind == "const":
        return f"expected {json.dumps(schema['const'])}, got {json.dumps(value)[:60]}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kind]
        return f"must be {op} {schema[kind]}, got {value}"
    if kind == "multipleOf":
        return f"must be a multiple of {schema['multipleOf']}, got {value}"
    if kind == "pattern":
        if schema.get("pattern", "").startswith("^[A-Za-z0-9]"):
            return (f"{json.dumps(value)} is not a valid id: use 1-64 letters, digits, '_' or '-', "
                    "starting with a letter or digit")
        return f"{json.dumps(value)} is not allowed here (use '/' to separate folders)"
    if kind == "propertyNames":
        return f"{json.dumps(err.instance)} is not a valid id: use 1-64 letters, digits, '_' or '-'"
    if kind == "minLength":
        return "must not be empty"
    if kind == "minItems":
        return f"needs at least {schema['minItems']} item(s)"
    if kind == "uniqueItems":
        return "lists the same item twice"
    if kind == "oneOf" and err.absolute_path and err.absolute_path[-1] == "duration":
        return f'expected a number of seconds > 0 (at most 600) or "{FIT_TO_DIALOGUE}", got {json.dumps(value)}'
    return err.message


def known_hint(name: str, known) -> str:
    """" (did you mean …?)" or the known names, for a message about an unknown id."""
    if not known:
        return " (none are defined)"
    return close_match(name, known) or f" (known: {', '.join(sorted(known)[:8])})"
