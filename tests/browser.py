"""Helpers of tests/test_browser.py: find (or install) Chromium, watch a page for network
use and console errors, tell a blank screenshot from a drawn one, and measure its colour.

Chromium is Debian's ``chromium`` package, driven by Playwright for Python with
``executable_path``: no ``playwright install`` and no browser download, so the test runs
wherever apt can install Chromium. ``HUBNB_CHROMIUM`` names another Chromium or Chrome
binary to use instead (tests/test_browser.py reads it).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from dataclasses import dataclass, field

# Launch flags: no sandbox (CI containers run as root, where Chromium refuses its
# sandbox), no GPU (headless machines have none), and /tmp instead of a small /dev/shm.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
APT_TIMEOUT = 600
# URL schemes a report may load from: its own file, images inlined as data: URIs.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def chromium_path() -> str | None:
    """The Chromium binary on PATH (``chromium``, or Ubuntu's ``chromium-browser``)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def install_chromium() -> tuple[str | None, str]:
    """Install Debian's ``chromium`` with apt-get (``apt-get update`` first only if a plain
    install fails). Returns (path, "") on success, else (None, why not)."""
    apt = shutil.which("apt-get")
    if apt is None:
        return None, "Chromium is not installed and there is no apt-get to install it"
    prefix = []
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            return None, "Chromium is not installed; apt-get needs root and there is no sudo"
        prefix = [sudo, "-n"]           # never wait for a password
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*prefix, apt, "install", "-y", "chromium"]
    last = ""
    for step in ([install], [[*prefix, apt, "update"], install]):
        for cmd in step:
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                      timeout=APT_TIMEOUT)
            except subprocess.TimeoutExpired:
                return None, f"`{' '.join(cmd)}` took over {APT_TIMEOUT} s"
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
                last = f"`{' '.join(cmd)}` failed ({proc.returncode}): {tail[0]}"
                break
        else:
            path = chromium_path()
            if path:
                return path, ""
            last = "apt-get installed chromium but no chromium binary is on PATH"
    return None, f"Chromium is not installed and could not be installed: {last}"


@dataclass
class Watch:
    """What a page did that a self-contained report must not: requests that leave the
    machine, console errors and uncaught exceptions."""

    network: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        def route(r):
            if r.request.url.startswith(LOCAL_SCHEMES):
                r.continue_()
            else:
                self.network.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("request", lambda req: None if req.url.startswith(LOCAL_SCHEMES)
                else self.network.append(req.url))
        page.on("websocket", lambda ws: self.network.append(ws.url))
        page.on("console", lambda m: self.errors.append(f"console: {m.text} ({m.location})")
                if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def assert_clean(self, what: str) -> None:
        off = sorted(set(self.network))
        assert not off, f"{what} reached the network (must load with none): {off}"
        assert not self.errors, f"{what} logged errors: {self.errors}"


@dataclass(frozen=True)
class Pixels:
    """How much of a screenshot is drawn: the share of pixels that differ from its most
    common colour (the background) and the share of dark pixels (text, lines)."""

    width: int
    height: int
    background: tuple
    drawn: float
    dark: float

    def __str__(self):
        return (f"{self.width}x{self.height} px, background {self.background}, "
                f"{self.drawn:.1%} drawn, {self.dark:.2%} dark")


def pixels(png: bytes) -> Pixels:
    from PIL import Image

    im = Image.open(io.BytesIO(png)).convert("RGB")
    n = im.width * im.height
    count, background = max(im.getcolors(maxcolors=n))
    dark = sum(im.convert("L").histogram()[:110])
    return Pixels(im.width, im.height, background, 1 - count / n, dark / n)


def mean_colour(png: bytes) -> tuple[float, float, float]:
    """The mean (red, green, blue) of a screenshot, 0-255 each."""
    from PIL import Image, ImageStat

    return tuple(ImageStat.Stat(Image.open(io.BytesIO(png)).convert("RGB")).mean)
