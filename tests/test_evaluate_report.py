"""The report opens in headless Chromium (Debian's package) and every figure loads."""

from __future__ import annotations

import re

import pytest

from distsmote.datasets import CHURN_LABEL, make_churn
from distsmote.evaluate import evaluate
from distsmote.evaluate.browser import images_loaded, screenshot


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "rep"
    evaluate(make_churn(2000, seed=2), CHURN_LABEL, "none,smote,tomek-links", "lr,dt", report=str(out))
    return out


def test_every_figure_loads_in_chromium(report):
    pngs = list(report.glob("*.png"))
    loaded, total = images_loaded(str(report / "report.html"))
    assert total == len(pngs) >= 10
    assert loaded == total


def test_a_broken_figure_is_detected(report, tmp_path):
    page = (report / "report.html").read_text()
    broken = re.sub(r"base64,[A-Za-z0-9+/=]{200}", "base64,AAAA", page, count=1)
    path = tmp_path / "broken.html"
    path.write_text(broken)
    loaded, total = images_loaded(str(path))
    assert loaded == total - 1


def test_screenshot_of_the_rendered_report(report, tmp_path):
    png = screenshot(str(report / "report.html"), str(tmp_path / "shot.png"), width=800, height=1200)
    with open(png, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(head[16:20], "big") == 800 and int.from_bytes(head[20:24], "big") == 1200
