"""The planner: a request becomes a storyboard that validates, through llama.cpp or an OpenAI-compatible server.

The model is a tiny random-weight llama built here with ``gguf``'s writer (2 layers, 64 wide, a
character-level sentencepiece vocabulary with byte fallback): it knows nothing, so every storyboard it
produces is valid only because the grammar and the repair step make it so.
"""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from animstudio.translator.planning import backends
from animstudio.translator.planning.backends import LlamaCppBackend, OpenAICompatibleBackend, PlanError, find_model
from animstudio.nodes.llm.llm_nodes import AnimStudioPlanStoryboard, AnimStudioShotPrompts
from animstudio.translator.planning.planner import detect_language, plan_storyboard, shot_prompts
from animstudio.translator.schema_check import schema_problems
from animstudio.translator.storyboard import parse_storyboard

try:
    import llama_cpp
except ImportError:  # the module's other tests still run
    llama_cpp = None
needs_llama = pytest.mark.skipif(llama_cpp is None, reason="llama-cpp-python is not installed "
                                                           "(pip install 'animstudio[llm]')")

N_CTX = 4096
MAX_TOKENS = 2600


# ------------------------------------------------------------------------------------------ a tiny model

def write_tiny_llama(path, dim=64, layers=2, heads=4, ff=128, seed=0, closing_bias=0.7):
    """A random-weight llama GGUF that llama.cpp loads: SPM vocabulary of characters with byte fallback."""
    import gguf

    tokens, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>"), scores.append(0.0), types.append(6)
    pieces = ["\u2581"] + [chr(c) for c in range(0x21, 0x7F)]
    pieces += ['":', '","', '{"', '"}', '":"', '"],', '},{"', "\u2581the", "shot", "scene", "character", "description"]
    for i, piece in enumerate(pieces):
        tokens.append(piece), scores.append(-float(i) if len(piece) == 1 else 1.0), types.append(1)
    vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def w(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-random-llama")
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(dim)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(dim // heads)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    # Random weights, except one constant direction in every embedding that the output head reads as a
    # preference for closing quotes and brackets: the grammar decides what is allowed, this keeps the
    # (otherwise arbitrary) replies short enough for a test.
    embed, head = w(vocab, dim), w(vocab, dim)
    embed[:, 0] = 1.0
    for closer in ('"', "]", "}"):
        head[tokens.index(closer), 0] = closing_bias
    writer.add_tensor("token_embd.weight", embed)
    writer.add_tensor("output_norm.weight", np.ones(dim, np.float32))
    writer.add_tensor("output.weight", head)
    for i in range(layers):
        p = f"blk.{i}."
        writer.add_tensor(p + "attn_norm.weight", np.ones(dim, np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(p + name + ".weight", w(dim, dim))
        writer.add_tensor(p + "ffn_norm.weight", np.ones(dim, np.float32))
        writer.add_tensor(p + "ffn_gate.weight", w(ff, dim))
        writer.add_tensor(p + "ffn_up.weight", w(ff, dim))
        writer.add_tensor(p + "ffn_down.weight", w(dim, ff))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    pytest.importorskip("gguf", reason="the gguf package (writes the test model) is not installed")
    return write_tiny_llama(tmp_path_factory.mktemp("llm") / "tiny-llama.gguf")


def tiny_backend(path, **kw):
    return LlamaCppBackend(path, n_ctx=N_CTX, n_threads=2, max_tokens=MAX_TOKENS, **kw)


def assert_valid(board, tmp_path):
    assert schema_problems(board) == []
    parse_storyboard(board, base_dir=tmp_path)


# ------------------------------------------------------------------------------------------ llama.cpp

@needs_llama
def test_grammar_keeps_a_random_model_inside_the_storyboard(tiny_model, tmp_path):
    board = plan_storyboard("Лиса и ворона спорят о сыре.", tiny_backend(tiny_model), seed=1, shots_hint=2)
    assert_valid(board, tmp_path)
    assert board["version"] == 1 and board["project"]["language"] == "ru"
    assert 1 <= len(board["shots"]) <= 2
    assert all("keyframe" not in s for s in board["shots"]) and "music" not in board


@needs_llama
def test_same_seed_same_storyboard(tiny_model):
    backend = tiny_backend(tiny_model, temperature=0.9)
    first = plan_storyboard("A robot learns to paint.", backend, seed=7, shots_hint=1)
    again = plan_storyboard("A robot learns to paint.", backend, seed=7, shots_hint=1)
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    others = {json.dumps(plan_storyboard("A robot learns to paint.", backend, seed=s, shots_hint=1), sort_keys=True)
              for s in (8, 9, 10)}
    assert len(others | {json.dumps(first, sort_keys=True)}) > 1  # the seed is really used


@needs_llama
def test_model_is_loaded_once_per_path(tiny_model):
    a, b = tiny_backend(tiny_model), tiny_backend(tiny_model)
    assert a._llama() is b._llama()


def test_missing_model_names_the_file_and_the_folder(tmp_path, monkeypatch):
    with pytest.raises(PlanError, match="nope.gguf") as err:
        find_model(tmp_path / "nope.gguf")
    assert str(tmp_path) in str(err.value)
    monkeypatch.setenv(backends.MODEL_DIR_ENV, str(tmp_path))
    with pytest.raises(PlanError, match="other.gguf") as err:
        LlamaCppBackend("other.gguf")
    assert str(tmp_path) in str(err.value) and "nothing is downloaded" in str(err.value)
    (tmp_path / "other.gguf").write_bytes(b"GGUF")
    assert find_model("other.gguf") == tmp_path / "other.gguf"
    assert not (tmp_path / "LLM").exists()


# ------------------------------------------------------------------------------------------ OpenAI-compatible

class _Handler(BaseHTTPRequestHandler):
    """/v1/chat/completions answered by the tiny model through llama-cpp-python (or a canned reply)."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.seen.append({"body": body, "auth": self.headers.get("Authorization")})
        fmt = body.get("response_format") or {}
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        if fmt.get("type") == "json_schema" and server.reject_json_schema:
            return self._send(400, {"error": {"message": "response_format json_schema is not supported"}})
        if server.canned is not None:
            content = server.canned
        else:
            schema = fmt["json_schema"]["schema"] if fmt.get("type") == "json_schema" else fmt.get("schema")
            llm = tiny_backend(server.model_path)._llama()
            llm.reset()
            out = llm.create_chat_completion(messages=body["messages"], seed=body.get("seed"),
                                             temperature=body.get("temperature", 0.0), max_tokens=MAX_TOKENS,
                                             response_format={"type": "json_object", "schema": schema})
            content = out["choices"][0]["message"]["content"]
        self._send(200, {"object": "chat.completion", "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": content}}]})

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server(tiny_model):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.model_path, httpd.seen, httpd.canned, httpd.reject_json_schema = tiny_model, [], None, False
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(httpd):
    return f"http://127.0.0.1:{httpd.server_address[1]}"


@needs_llama
def test_openai_compatible_server_plans_a_valid_storyboard(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    board = plan_storyboard("小狐狸找月亮。", OpenAICompatibleBackend(_url(server), "tiny", max_tokens=MAX_TOKENS),
                            seed=3, shots_hint=1)
    assert_valid(board, tmp_path)
    assert board["project"]["language"] == "zh"
    assert server.seen[0]["body"]["response_format"]["type"] == "json_schema"
    assert server.seen[0]["auth"] == "Bearer sk-test-secret"


@pytest.fixture(scope="module")
def llama_cpp_server(tiny_model):
    """llama-cpp-python's own OpenAI-compatible server (``python -m llama_cpp.server``) on the tiny model."""
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed")
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(tiny_model), "--host",
                                "127.0.0.1", "--port", str(port), "--n_ctx", str(N_CTX), "--n_threads", "2",
                                "--model_alias", "tiny"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("llama_cpp.server did not start: " + process.stderr.read().decode()[-2000:])
            time.sleep(0.3)
    yield url
    process.terminate()
    process.wait(timeout=20)


@needs_llama
def test_llama_cpp_python_server_plans_a_valid_storyboard(llama_cpp_server, tmp_path):
    """The OpenAI-compatible path against a real server: it takes the schema (json_schema is refused there,
    json_object with the schema is honoured) and the reply passes the project's validator."""
    backend = OpenAICompatibleBackend(llama_cpp_server, "tiny", max_tokens=MAX_TOKENS)
    board = plan_storyboard("A lighthouse keeper and a ship.", backend, seed=3, shots_hint=1)
    assert_valid(board, tmp_path)
    again = plan_storyboard("A lighthouse keeper and a ship.", backend, seed=3, shots_hint=1)
    assert again == board  # deterministic with a seed on the server too


@needs_llama
def test_server_without_json_schema_gets_json_object(server, tmp_path):
    server.reject_json_schema = True
    board = plan_storyboard("A cat naps.", OpenAICompatibleBackend(_url(server) + "/v1/", "tiny"), seed=0, shots_hint=1)
    assert_valid(board, tmp_path)
    assert [s["body"]["response_format"]["type"] for s in server.seen] == ["json_schema", "json_object"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_one_clear_error_without_credentials(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-shown")
    url = f"http://user:hunter2@127.0.0.1:{_free_port()}"
    with pytest.raises(PlanError, match="cannot reach the LLM server") as err:
        plan_storyboard("A cat naps.", OpenAICompatibleBackend(url, "tiny"))
    text = str(err.value)
    assert "127.0.0.1" in text and "hunter2" not in text and "sk-never-shown" not in text and "user" not in text


@pytest.fixture
def canned_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.model_path, httpd.seen, httpd.canned, httpd.reject_json_schema = None, [], None, False
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_reply_that_fails_validation_is_one_clear_error(canned_server):
    canned_server.canned = json.dumps({"title": "Empty", "shots": []})
    with pytest.raises(PlanError) as err:
        plan_storyboard("A cat naps.", OpenAICompatibleBackend(_url(canned_server), "tiny-model"))
    text = str(err.value)
    assert "tiny-model" in text and "$.shots" in text and "does not validate" in text
    canned_server.canned = "Sure! Here is your storyboard:"
    with pytest.raises(PlanError, match="did not answer with JSON"):
        plan_storyboard("A cat naps.", OpenAICompatibleBackend(_url(canned_server), "tiny-model"))


def test_refusing_server_is_one_clear_error(canned_server):
    canned_server.reject_json_schema = True
    canned_server.canned = None
    with pytest.raises(PlanError, match="HTTP 404"):
        plan_storyboard("A cat naps.", OpenAICompatibleBackend(_url(canned_server) + "/wrong", "m"))


# ------------------------------------------------------------------------------------------ repair and prompts

class _Fake:
    def __init__(self, reply):
        self.reply = reply

    def describe(self):
        return "fake model"

    def complete_json(self, system, user, schema, seed=0):
        self.system = system
        return json.dumps(self.reply)


def test_repair_fixes_what_a_schema_cannot_promise(tmp_path):
    reply = {"title": "Fox\x07", "style": "ink", "width": 1000, "height": 3, "fps": 500,
             "characters": [{"id": "fox", "name": "Fox", "description": "a red fox"},
                            {"id": "fox", "name": "Twin", "description": "another"}],
             "scenes": [{"id": "wood", "location": "forest", "time_of_day": "dusk"}],
             "shots": [{"id": "s1", "scene": "nowhere", "characters": ["fox", "bear", "fox"], "description": "runs",
                        "camera": "wide", "move": "warp", "duration": 0, "transition": "dissolve",
                        "dialogue": [{"character": "fox", "text": "Hi!", "emotion": "happy"},
                                     {"character": "bear", "text": "Boo", "emotion": "sad"}]},
                       {"id": "s1", "scene": "wood", "characters": [], "description": "", "camera": "close_up",
                        "move": "static", "duration": 1e9, "dialogue": [], "transition": "wipe_left"}]}
    board = plan_storyboard("A fox in the wood", _Fake(reply), seed=5)
    assert_valid(board, tmp_path)
    project, shots = board["project"], board["shots"]
    assert (project["width"], project["height"], project["fps"]) == (1000, 64, 60)
    assert project["title"] == "Fox" and project["language"] == "en" and project["seed"] == 5
    assert sorted(board["characters"]) == ["fox", "fox_2"]
    assert [s["id"] for s in shots] == ["s1", "s1_2"]
    assert "scene" not in shots[0] and shots[0]["characters"] == ["fox"]
    assert shots[0]["camera"] == {"shot": "wide", "move": "static"}
    assert shots[0]["transition"] == {"type": "cut"}  # the first shot cannot dissolve from nothing
    assert [line["character"] for line in shots[0]["dialogue"]] == ["fox"]
    assert 0 < shots[0]["duration"] and shots[1]["duration"] <= 60
    assert shots[1]["transition"]["duration"] < shots[1]["duration"]


def test_dialogue_language_follows_the_request():
    assert (detect_language("小狐狸"), detect_language("Лиса"), detect_language("A fox")) == ("zh", "ru", "en")
    fake = _Fake({"title": "T", "style": "", "characters": [], "scenes": [],
                  "shots": [{"id": "a", "description": "d"}]})
    assert plan_storyboard("Лиса и ворона", fake)["project"]["language"] == "ru"
    assert "Russian" in fake.system


def test_shot_prompts_and_nodes(tmp_path):
    board = plan_storyboard("A fox", _Fake({"title": "T", "style": "flat colours",
                                            "characters": [{"id": "fox", "name": "Vix", "description": "red fox"}],
                                            "scenes": [{"id": "w", "location": "forest", "time_of_day": "night"}],
                                            "shots": [{"id": "a", "scene": "w", "characters": ["fox"],
                                                       "description": "fox looks up", "camera": "close_up",
                                                       "dialogue": [{"character": "fox", "text": "Oh!",
                                                                     "emotion": "surprised"}]}]}))
    positive, negative = shot_prompts(board, "a")
    assert positive.startswith("flat colours, close-up, fox looks up") and "Vix: red fox" in positive
    assert "forest" in positive and "surprised expression" in positive
    assert "blurry" in negative and negative.count("blurry") == 1
    node_pos, node_neg = AnimStudioShotPrompts().prompts(json.dumps(board), "a")
    assert (node_pos, node_neg) == (positive, negative)
    with pytest.raises(PlanError, match="no shot 'zz'"):
        shot_prompts(board, "zz")
    for cls in (AnimStudioPlanStoryboard, AnimStudioShotPrompts):
        inputs = cls.INPUT_TYPES()
        for group in inputs.values():
            for name, (_, options) in group.items():
                assert options.get("tooltip"), f"{cls.__name__}.{name} has no tooltip"
        assert cls.CATEGORY == "animstudio/llm" and len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES)


def test_plan_node_through_a_server(canned_server):
    canned_server.canned = json.dumps({"title": "T", "style": "", "characters": [], "scenes": [],
                                       "shots": [{"id": "a", "description": "d"}]})
    (text,) = AnimStudioPlanStoryboard().plan("A fox", "openai", "m", _url(canned_server), 0)
    assert json.loads(text)["shots"][0]["id"] == "a"


def test_comfyui_models_llm_folder_is_registered_and_searched(tmp_path, monkeypatch):
    import sys
    import types

    models = tmp_path / "models"
    (models / "LLM").mkdir(parents=True)
    (models / "LLM" / "m.gguf").write_bytes(b"GGUF")
    registered = {}
    fake = types.SimpleNamespace(models_dir=str(models), folder_names_and_paths=registered,
                                 add_model_folder_path=lambda name, path: registered.setdefault(name, ([path], set())),
                                 get_folder_paths=lambda name: registered[name][0])
    monkeypatch.setitem(sys.modules, "folder_paths", fake)
    monkeypatch.delenv(backends.MODEL_DIR_ENV, raising=False)
    assert find_model("m.gguf") == models / "LLM" / "m.gguf"
    assert registered["LLM"][0] == [str(models / "LLM")]


def test_cli_plan_writes_a_storyboard_that_validates(tiny_model, tmp_path, capsys):
    from animstudio.cli import main

    out = tmp_path / "story.json"
    assert main(["plan", "a short where a keeper saves a ship", "--model", str(tiny_model), "-o", str(out),
                 "--shots", "2", "--seed", "3"]) == 0
    capsys.readouterr()
    assert main(["validate", str(out)]) == 0
    assert "valid" in capsys.readouterr().out


def test_cli_plan_with_a_missing_model_is_one_clear_error(tmp_path, capsys):
    from animstudio.cli import main

    assert main(["plan", "anything", "--model", str(tmp_path / "nope.gguf")]) == 2
    err = capsys.readouterr().err
    assert "nope.gguf" in err and "Traceback" not in err
