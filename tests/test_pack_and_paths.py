"""The pack as ComfyUI sees it (mappings, descriptions, tooltips), and the path and secret rules."""
from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

import animstudio
from animstudio.translator.client import ComfyClient, local_output_path
from animstudio.common.urls import redact
from animstudio.common.paths import PathEscapeError, resolve_inside, safe_filename


def test_importing_the_translator_loads_no_node_module_and_no_torch():
    code = ("import sys, animstudio.translator.render, animstudio.translator.client, animstudio.cli; "
            "print(sorted(m for m in sys.modules if m.startswith(('animstudio.nodes', 'torch', 'comfy'))))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


REPO = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_installed():
    """Each folder of the package with an ``__init__.py`` is in pyproject's package list (a wheel would lack it)."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(("animstudio",) + init.parent.relative_to(REPO).parts) for init in REPO.rglob("__init__.py")
             if not init.relative_to(REPO).parts[0].startswith((".", "tests", "bench", "build"))}
    assert found == listed, (found - listed, listed - found)


def test_no_node_module_imports_the_translator_or_cloud_when_loaded():
    """Arrows run one way: ``nodes/`` stands beside the translator; a node shell over planning imports it only
    when it runs (inside a function), never at module level."""
    offenders = []
    for path in (REPO / "nodes").rglob("*.py"):
        for statement in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(statement, ast.ImportFrom) and statement.level and \
                    (statement.module or "").split(".")[0] in ("translator", "cloud"):
                offenders.append(f"{path.relative_to(REPO)}:{statement.lineno}")
    assert not offenders, offenders


def test_every_pack_node_is_documented_for_the_graph_editor():
    mappings = animstudio.NODE_CLASS_MAPPINGS
    assert mappings and set(mappings) == set(animstudio.NODE_DISPLAY_NAME_MAPPINGS)
    assert animstudio.WEB_DIRECTORY == "./js"
    for name, cls in mappings.items():
        assert name.startswith("AnimStudio")
        assert cls.CATEGORY.startswith("animstudio/") and cls.DESCRIPTION.strip()
        assert len(getattr(cls, "OUTPUT_TOOLTIPS", ())) == len(cls.RETURN_TYPES)
        for section in cls.INPUT_TYPES().values():
            for input_name, spec in section.items():
                assert spec[1].get("tooltip"), f"{name}.{input_name} has no tooltip"


@pytest.mark.parametrize("relative", ["../x.png", "/etc/passwd", "a/../../x", "C:/x.png", ""])
def test_resolve_inside_refuses_escapes(tmp_path, relative):
    with pytest.raises(PathEscapeError):
        resolve_inside(tmp_path, relative)


def test_resolve_inside_refuses_symlinks_out(tmp_path):
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "link").symlink_to(tmp_path.parent)
    with pytest.raises(PathEscapeError):
        resolve_inside(tmp_path / "inner", "link/secret")
    assert resolve_inside(tmp_path, "inner/ok.png") == tmp_path / "inner" / "ok.png"


@pytest.mark.parametrize("subfolder,filename,expected", [
    ("../../etc", "passwd", "etc/passwd"),
    ("animstudio/keyframes", "../../../x.png", "animstudio/keyframes/x.png"),
    ("", ".bashrc", "bashrc"),
    ("a\\..\\..\\b", "f i<l>e.png", "a/b/f_i_l_e.png"),
])
def test_server_named_outputs_stay_in_the_download_folder(tmp_path, subfolder, filename, expected):
    target = local_output_path(tmp_path, subfolder, filename)
    assert target == tmp_path / expected
    assert tmp_path in target.parents


def test_safe_filename_never_returns_a_separator_or_empty():
    for raw in ["..", "/", "a/b", "\\\\server\\share", ""]:
        name = safe_filename(raw)
        assert name and "/" not in name and "\\" not in name and not name.startswith(".")


def test_secrets_in_server_urls_are_not_shown():
    url = "https://user:s3cret@gpu.example.test:8443/comfy?token=abc123"
    assert redact(url) == "https://gpu.example.test:8443/comfy"
    client = ComfyClient(url)
    assert "s3cret" not in client.name and "abc123" not in client.name


def test_credentials_in_the_url_become_a_header():
    client = ComfyClient("http://ann:pa%20ss@127.0.0.1:8188/")
    assert client.base_url == "http://127.0.0.1:8188"
    import base64

    assert base64.b64decode(client.headers["Authorization"].split()[1]) == b"ann:pa ss"
