"""What the browser tests share: Debian's Chromium driven by Playwright (never a downloaded browser), skipped with
the reason where either is missing, and a fresh ComfyUI user's first-run templates browser marked seen."""
from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


def playwright_or_skip():
    """Playwright's ``sync_playwright``, or a skip saying what is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed in this environment")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium); no browser is downloaded")
    return sync_playwright


def skip_first_run_dialog(url: str) -> None:
    """A fresh ComfyUI user sees the templates browser over the canvas; mark the tutorial seen."""
    request = urllib.request.Request(url + "/settings/Comfy.TutorialCompleted", data=b"true", method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()


def artifact_folder(tmp_path: Path, name: str) -> Path:
    """Where a browser test keeps its screenshots: $ANIMSTUDIO_TEST_ARTIFACTS/<name> (else under tmp_path)."""
    import os

    folder = Path(os.environ.get("ANIMSTUDIO_TEST_ARTIFACTS") or tmp_path) / name
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


def close_dialogs(page) -> None:
    """First-run dialogs, and the error dialog the frontend opens over the canvas when a prompt is refused."""
    for _ in range(5):
        if not page.locator(".p-dialog-mask").count():
            break
        page.keyboard.press("Escape")
        page.wait_for_timeout(300)
