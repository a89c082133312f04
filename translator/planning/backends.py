"""Language-model backends for the planner: llama.cpp in process, or an OpenAI-compatible server.

Both answer one question: given a system prompt, a user prompt and a JSON Schema, return the model's
reply text (meant to be one JSON object that fits the schema). Constraining the reply is the backend's
job: llama.cpp compiles the schema to a grammar, so even a weak model cannot leave it; a server is
asked for ``response_format`` json_schema, falling back to json_object. Nothing here downloads a model.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from ...common.errors import AnimStudioError, Problem
from ...common.http import Answer, Unreachable, mask, send
from ...common.urls import redact

log = logging.getLogger(__name__)

MODEL_DIR_ENV = "ANIMSTUDIO_LLM_DIR"
COMFY_FOLDER = "LLM"  # ComfyUI's models/LLM, the folder LLM node packs share
TIMEOUT_ENV = "ANIMSTUDIO_LLM_TIMEOUT"
DEFAULT_TIMEOUT = 300.0


class PlanError(AnimStudioError, ValueError):
    """The planner could not produce a valid storyboard: the model, the server or its reply."""

    exit_code = 2


# ------------------------------------------------------------------------------------------ model files

def _comfy_llm_folders() -> list[Path] | None:
    """ComfyUI's LLM model folders (registering models/LLM once), or None outside ComfyUI."""
    try:
        import folder_paths  # ComfyUI's own module; absent outside ComfyUI
    except ImportError:
        return None
    try:
        if COMFY_FOLDER not in folder_paths.folder_names_and_paths:
            folder_paths.add_model_folder_path(COMFY_FOLDER, os.path.join(folder_paths.models_dir, COMFY_FOLDER))
        return [Path(p) for p in folder_paths.get_folder_paths(COMFY_FOLDER)]
    except Exception as exc:  # an unusual folder_paths; fall back to the environment variable
        log.warning("cannot use ComfyUI's %s model folder: %s", COMFY_FOLDER, exc)
        return None


def model_folders() -> list[Path]:
    """Where a model named without a folder is looked for: ComfyUI's models/LLM, then $ANIMSTUDIO_LLM_DIR."""
    folders = list(_comfy_llm_folders() or [])
    if os.environ.get(MODEL_DIR_ENV):
        folders.append(Path(os.environ[MODEL_DIR_ENV]).expanduser())
    return folders


def find_model(name: str | os.PathLike) -> Path:
    """An absolute path as given, else the file in a model folder; a clear error when it is nowhere."""
    path = Path(name).expanduser()
    if not str(name).strip():
        raise PlanError("no LLM model given", [Problem("model", "name a .gguf file (absolute path, or a file in "
                                                                   f"ComfyUI's models/{COMFY_FOLDER} or ${MODEL_DIR_ENV})")])
    if path.is_absolute():
        if path.is_file():
            return path
        raise PlanError(f"LLM model file not found: {path.name}", [Problem("model", f"no file {path.name!r} in {path.parent}")])
    folders = model_folders()
    for folder in folders:
        candidate = folder / path
        if candidate.is_file():
            return candidate
    where = ", ".join(str(f) for f in folders) or (f"no model folder is set (run inside ComfyUI, set ${MODEL_DIR_ENV}, "
                                                   "or give an absolute path)")
    raise PlanError(f"LLM model file not found: {str(path)!r}",
                    [Problem("model", f"looked in: {where}; put the .gguf file there (nothing is downloaded)")])


# ------------------------------------------------------------------------------------------ llama.cpp

_MODELS: dict[tuple, Any] = {}
_MODELS_LOCK = threading.Lock()


@atexit.register
def _close_models() -> None:
    """Free the kept models while the interpreter still works: llama.cpp's own finaliser, left to the end of the
    interpreter, fails there ("TypeError: 'NoneType' object is not callable") and prints a traceback."""
    with _MODELS_LOCK:
        for model in _MODELS.values():
            close = getattr(model, "close", None)
            if close is not None:
                close()
        _MODELS.clear()


def llama_cpp_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


class LlamaCppBackend:
    """llama-cpp-python in this process. The model is loaded once per (path, n_ctx, n_threads) and kept."""

    kind = "llama_cpp"

    def __init__(self, model_path: str | os.PathLike, n_ctx: int = 2048, n_threads: int = 2,
                 temperature: float = 0.0, max_tokens: int = 1536, repeat_penalty: float = 1.0):
        self.model_path = find_model(model_path)
        self.n_ctx, self.n_threads = int(n_ctx), int(n_threads)
        self.temperature, self.max_tokens = float(temperature), int(max_tokens)
        self.repeat_penalty = float(repeat_penalty)  # > 1: a small greedy model repeats itself less

    def describe(self) -> str:
        return f"llama.cpp model {self.model_path.name}"

    def _llama(self):
        try:
            import llama_cpp
        except ImportError:
            raise PlanError("the llama_cpp backend needs llama-cpp-python",
                            [Problem("backend", "pip install 'animstudio[llm]' (or use the openai backend)")]) from None
        key = (str(self.model_path.resolve()), self.n_ctx, self.n_threads)
        with _MODELS_LOCK:
            if key not in _MODELS:
                try:
                    _MODELS[key] = llama_cpp.Llama(model_path=key[0], n_ctx=self.n_ctx, n_threads=self.n_threads,
                                                   verbose=False)
                except Exception as exc:
                    raise PlanError(f"llama.cpp cannot load {self.model_path.name}",
                                    [Problem("model", f"{type(exc).__name__}: {exc}")]) from None
            return _MODELS[key]

    def complete_json(self, system: str, user: str, schema: dict, seed: int = 0) -> str:
        from llama_cpp import LlamaGrammar

        llm = self._llama()
        grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        with _MODELS_LOCK:  # one generation at a time per process: the context is shared state
            llm.reset()
            llm.set_seed(int(seed) & 0xFFFFFFFF)
            try:
                out = llm.create_chat_completion(
                    messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                    grammar=grammar, temperature=self.temperature, seed=int(seed) & 0xFFFFFFFF,
                    max_tokens=self.max_tokens, repeat_penalty=self.repeat_penalty)
            except ValueError as exc:  # prompt longer than the context
                raise PlanError(f"{self.describe()} could not answer", [Problem("request", str(exc))]) from None
        choice = out["choices"][0]
        if choice.get("finish_reason") == "length":
            log.warning("%s stopped at max_tokens=%d; the reply is probably cut off", self.describe(), self.max_tokens)
        return choice["message"]["content"] or ""


# ------------------------------------------------------------------------------------------ OpenAI-compatible

class OpenAICompatibleBackend:
    """POST /v1/chat/completions to a server (OpenAI, llama.cpp's server, vLLM, Ollama...).

    The API key is read from the environment variable ``api_key_env`` only, sent as a bearer token,
    and never logged or echoed in an error.
    """

    kind = "openai"

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY",
                 temperature: float = 0.0, max_tokens: int = 1536, timeout: float | None = None):
        if not str(base_url).strip():
            raise PlanError("no server URL for the openai backend", [Problem("base_url", "e.g. http://127.0.0.1:8080")])
        self.base_url = str(base_url).strip().rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.temperature, self.max_tokens = float(temperature), int(max_tokens)
        self.timeout = timeout or float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)

    @property
    def url(self) -> str:
        base = self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url
        return base + "/v1/chat/completions"

    def describe(self) -> str:
        return f"model {self.model!r} at {redact(self.url)}"

    def complete_json(self, system: str, user: str, schema: dict, seed: int = 0) -> str:
        body = {"model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens,
                "seed": int(seed) & 0x7FFFFFFF,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
        formats = [{"type": "json_schema", "json_schema": {"name": "storyboard_plan", "strict": True, "schema": schema}},
                   {"type": "json_object", "schema": schema}]
        for i, response_format in enumerate(formats):
            answer = self._post(dict(body, response_format=response_format))
            if _refuses_format(answer.status, answer.body) and i + 1 < len(formats):
                log.info("%s refused response_format %s (HTTP %d); trying %s", self.describe(),
                         response_format["type"], answer.status, formats[i + 1]["type"])
                continue
            if answer.status != 200:
                raise PlanError(f"the server at {redact(self.url)} refused the request (HTTP {answer.status})",
                                [Problem("server", answer.message() or "(empty answer)")])
            try:
                content = json.loads(answer.body)["choices"][0]["message"]["content"] or ""
                return mask(content, answer.secrets, patterns=False)  # a reply echoing the key never shows it
            except (ValueError, KeyError, IndexError, TypeError):
                raise PlanError(f"the server at {redact(self.url)} did not answer like an OpenAI-compatible server",
                                [Problem("server", answer.text(200) or "(empty answer)")]) from None
        raise AssertionError("unreachable")

    def _post(self, body: dict) -> Answer:
        """One POST through the project's one HTTP helper (credentials in the URL become a header; the key never
        follows a redirect to another address; everything the server says comes back masked)."""
        shown = redact(self.url)
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "animstudio-llm"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            return send(self.url, method="POST", body=json.dumps(body).encode("utf-8"), headers=headers,
                        timeout=self.timeout, secrets=(key or "",), service="the LLM server")
        except Unreachable as fault:
            if fault.timed_out:
                raise PlanError(f"the LLM server at {shown} did not answer within {self.timeout:g} s",
                                [Problem("server", f"raise ${TIMEOUT_ENV} for slow servers")]) from None
            raise PlanError(f"cannot reach the LLM server at {shown}",
                            [Problem("server", f"{fault.reason}; is it running, and is the URL right?")]) from None


def _refuses_format(status: int, payload: bytes) -> bool:
    """Whether an error answer is a server turning down this ``response_format`` (400/422 from most servers;
    llama-cpp-python's server answers 500 with its validation error), so the next format is worth a try."""
    if status in (400, 422):
        return True
    return status >= 500 and b"response_format" in (payload or b"")


BACKENDS = ("llama_cpp", "openai")


def make_backend(backend: str, model: str, base_url: str = "", repeat_penalty: float = 1.0):
    """The backend a node or the CLI names: ``llama_cpp`` (a .gguf file) or ``openai`` (a server URL + model)."""
    if backend == "llama_cpp":
        return LlamaCppBackend(model, repeat_penalty=repeat_penalty)
    if backend == "openai":
        return OpenAICompatibleBackend(base_url, model)
    raise ValueError(f"unknown LLM backend {backend!r} (one of {', '.join(BACKENDS)})")
