"""Open a report in headless Chromium: check that every figure loads, or screenshot it.

Uses Debian's ``chromium`` (or ``$CHROMIUM``) with a throw-away profile and no network
services, so it runs unattended on a CI machine without a display.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
)
_CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var d = document.createElement('div');
  d.id = 'distsmote-image-check';
  d.textContent = 'images-loaded ' + ok + ' of ' + imgs.length;
  document.body.appendChild(d);
});
</script>"""


def find_chromium() -> str:
    """The Chromium executable (``$CHROMIUM``, else ``chromium`` on the PATH)."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise FileNotFoundError(
            "Chromium is not installed; install Debian's package with `apt-get install -y chromium` "
            "(or set CHROMIUM to its path)."
        )
    return path


def _run(args: list[str], timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="distsmote-chromium-") as profile:
        cmd = [find_chromium(), *_FLAGS, f"--user-data-dir={profile}", *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout


def images_loaded(page: str, timeout: float = 120) -> tuple[int, int]:
    """``(loaded, total)`` images of an HTML page after Chromium has loaded it.

    A copy of the page with a small inline script is opened (the page itself is not
    changed); the script counts images with ``complete && naturalWidth > 0``.
    """
    with open(page, encoding="utf-8") as fh:
        text = fh.read()
    with tempfile.TemporaryDirectory(prefix="distsmote-check-") as tmp:
        probe = os.path.join(tmp, "probe.html")
        with open(probe, "w", encoding="utf-8") as fh:
            fh.write(text.replace("</body>", _CHECK + "</body>", 1))
        dom = _run(["--virtual-time-budget=10000", "--dump-dom", f"file://{probe}"], timeout)
    found = re.search(r"images-loaded (\d+) of (\d+)", dom)
    if not found:
        raise RuntimeError("Chromium did not run the page's load handler; the page did not load.")
    return int(found.group(1)), int(found.group(2))


def screenshot(page: str, png: str, width: int = 1200, height: int = 3000, timeout: float = 120) -> str:
    """A PNG of the rendered page (the top ``width`` × ``height`` pixels)."""
    png = os.path.abspath(png)
    _run([f"--window-size={width},{height}", f"--screenshot={png}", "--virtual-time-budget=10000",
          f"file://{os.path.abspath(page)}"], timeout)
    if not os.path.isfile(png):
        raise RuntimeError(f"Chromium wrote no screenshot to {png!r}.")
    return png
