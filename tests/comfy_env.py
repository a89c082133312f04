"""Starting a real ComfyUI for the integration tier: a free loopback port, a throw-away base directory
with this repo linked into ``custom_nodes/``, an in-memory database. Never writes into ComfyUI itself."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def comfyui_paths() -> tuple[Path, str] | None:
    comfy = Path(os.environ.get("COMFYUI_DIR") or Path.home() / "comfy" / "ComfyUI").expanduser()
    if not (comfy / "main.py").is_file():
        return None
    python = os.environ.get("COMFYUI_PYTHON") or str(comfy.parent / "venv" / "bin" / "python")
    if not Path(python).exists():
        return None
    return comfy, python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ComfyServer:
    url: str
    base: Path
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def make_base_directory(base: Path) -> Path:
    for sub in ("custom_nodes", "user", "models/checkpoints", "models/loras", "input", "output"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / "animstudio"
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    return base


def start_comfyui(base: Path, startup_timeout: float = 120.0) -> ComfyServer:
    found = comfyui_paths()
    assert found is not None
    comfy, python = found
    make_base_directory(base)
    port = free_port()
    log_path = base / "comfyui.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--base-directory", str(base),
             "--database-url", "sqlite:///:memory:", "--disable-auto-launch"],
            cwd=comfy, stdout=log, stderr=subprocess.STDOUT)
    server = ComfyServer(f"http://127.0.0.1:{port}", base, process, log_path)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ComfyUI exited with {process.returncode}:\n{server.log()[-3000:]}")
        try:
            with urllib.request.urlopen(server.url + "/system_stats", timeout=5) as answer:
                json.load(answer)
            return server
        except OSError:
            time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"ComfyUI did not answer within {startup_timeout:.0f} s:\n{server.log()[-3000:]}")
