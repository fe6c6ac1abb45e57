"""The HTML report: self-contained (no external URLs) and it renders in headless Chromium."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import degrade
import pytest

from wavesmith import audio as A
from wavesmith.evaluate import evaluate

SR = 8000
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    ref, _ = degrade.synthetic_clips(16, SR, seed=1, seconds=0.5)
    gen, _ = degrade.synthetic_clips(6, SR, seed=2, seconds=0.5)
    for i, c in enumerate(ref):
        A.write(root / "ref" / f"r{i:02d}.wav", c, SR)
    for i, c in enumerate(gen):
        A.write(root / "gen" / f"g{i}.wav", c, SR)
    shutil.copy(root / "ref" / "r05.wav", root / "gen" / "copied.wav")
    evaluate(root / "gen", reference=root / "ref", report_path=root / "report.html")
    return root / "report.html"


def test_report_embeds_everything_and_names_the_copy(report):
    text = report.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)  # nothing fetched from a network
    assert text.count('src="data:image/png;base64,') >= 8
    assert text.count('<audio controls preload="auto" src="data:audio/wav;base64,') >= 8
    assert text.count("<svg") == 5  # four feature histograms and the memorization one
    assert "Likely copies of training clips (1)" in text and "copied.wav" in text


@pytest.mark.browser
def test_report_renders_images_and_playable_audio_in_headless_chromium(report, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Debian chromium and chromium-driver are not installed")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.set_page_load_timeout(60)
        driver.get(report.as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight]);")
        assert len(images) >= 8 and all(c and w > 0 and h > 0 for c, w, h in images), images
        state = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const players = Array.from(document.querySelectorAll('audio'));
            const ready = () => players.every(a => a.readyState >= 1 || a.error);
            const t0 = Date.now();
            (function wait() {
              if (ready() || Date.now() - t0 > 20000) {
                done(players.map(a => [a.readyState, a.duration, a.error ? a.error.code : 0]));
              } else { setTimeout(wait, 100); }
            })();""")
        assert len(state) >= 8
        for ready, duration, error in state:
            assert error == 0 and ready >= 1 and 0.4 < duration < 0.6, state  # 0.5 s clips decoded
        remote = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('data:'));")
        assert remote == []
        assert driver.find_element("tag name", "h1").text == "wavesmith evaluation"
    finally:
        driver.quit()
