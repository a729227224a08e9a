"""``report.html``: self-contained, every verdict linked to its evidence and figure, failed runs
at the top; opened in headless Chromium where one is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from analysis.cli import main
from tests.analysis.synth import write_run


@pytest.fixture(scope="module")
def html_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Regression: AE on/off and a knock-out, 6 seeds, AE clearly better; one failed run."""
    root = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(1)
    for seed in range(6):
        base = 0.1 * np.exp(rng.normal(0, 0.1))
        write_run(root, seed=seed, final=base, target_step=40)
        write_run(root, seed=seed, ae=True, final=0.6 * base, target_step=20)
        write_run(root, seed=seed, ae=True, ablation="no_noise", final=0.9 * base, target_step=30)
    failed = write_run(root, task="rosenbrock", metric="f", seed=9, status="failed", final=1.0)
    rec = (failed / "result.json").read_text().replace('"error": null', '"error": "<boom>"')
    (failed / "result.json").write_text(rec)
    out = tmp_path_factory.mktemp("report")
    assert main([str(root), "--out", str(out), "--n-boot", "300", "--quiet"]) == 0
    return out / "report.html"


def test_page_is_self_contained(html_report: Path) -> None:
    page = html_report.read_text()
    sources = re.findall(r'(?:src|href)="([^"#][^"]*)"', page)
    assert all(s.startswith("data:image/png;base64,") for s in sources), sources[:3]
    assert page.count("<figure") >= 2
    assert '<table class="sortable">' in page and "addEventListener" in page


def test_every_verdict_links_to_its_evidence_and_figure(html_report: Path) -> None:
    page = html_report.read_text()
    ids = set(re.findall(r' id="([^"]+)"', page))
    links = re.findall(r'href="#([^"]+)"', page)
    assert links, "no verdict links"
    assert set(links) <= ids, set(links) - ids
    assert any(link.startswith("ev-") for link in links)
    assert any(link.startswith("fig-verdict_") for link in links)


def test_failed_runs_are_listed_first_and_escaped(html_report: Path) -> None:
    page = html_report.read_text()
    assert page.index('class="alarm"') < page.index('id="verdicts"')
    assert "&lt;boom&gt;" in page and "<boom>" not in page


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.slow
def test_page_renders_in_headless_chromium(html_report: Path, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium installed (apt-get install chromium; .ci/run does so with apt)")
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,1800",
            f"--screenshot={shot}",
            html_report.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.is_file(), proc.stderr[-2000:]
    console_errors = [
        line
        for line in proc.stderr.splitlines()
        if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)
    ]
    assert not console_errors, console_errors
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 5.0, "the screenshot is blank"
    assert (pixels < 128).mean() > 0.005, "almost no dark pixels: no text drawn"


def test_headline_prints_a_prediction_with_its_numbers_and_figure(html_report: Path) -> None:
    from analysis.headline import headline, main

    lines = headline(html_report.parent, "knockout_noise")
    text = "\n".join(lines)
    assert lines[0].startswith("Prediction knockout_noise:")
    assert "time_to_target" in text and "threshold" in text
    assert f"figure: {html_report.parent / 'figures' / 'verdict_knockout_noise.png'}" in text
    assert main([str(html_report.parent), "--prediction", "no_such_prediction"]) == 1
