"""``wavesmith serve`` in a real browser: the server in a subprocess, headless Chromium through selenium.

Each tab renders; Generate makes a playable file from the shipped ``drums`` model; Transform
plays an uploaded melody with the shipped ``violin``; Voice speaks a typed sentence with a
speaker of the shipped ``speech`` model; Detect says a marked file is marked and refuses a
corrupt one (and the server keeps serving); a path outside the root is refused; and every
resource the page loaded came from the server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import wavesmith
from toy_model import make_db
from wavesmith.watermark import mark_file

pytestmark = pytest.mark.browser

SRC = Path(wavesmith.__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
TABS = ("Database", "Generate", "Voice", "Transform", "Train", "Evaluate", "Detect")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A root with a database, and (outside it) a marked file and a corrupt one to upload."""
    base = tmp_path_factory.mktemp("studio")
    root = base / "root"
    root.mkdir()
    make_db(root)
    noise = 0.1 * np.random.default_rng(0).standard_normal(3 * 16000).astype(np.float32)  # carries a mark well
    sf.write(base / "plain.wav", noise, 16000)
    mark_file(base / "plain.wav", base / "marked.wav", payload=1234)
    (base / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 20)
    t = np.arange(16000) / 16000
    melody = np.concatenate([0.3 * np.sin(2 * np.pi * f * t) for f in (392.0, 440.0)]).astype(np.float32)
    sf.write(base / "melody.wav", melody, 16000)
    return {"root": root, "marked": base / "marked.wav", "corrupt": base / "corrupt.wav",
            "melody": base / "melody.wav"}


@pytest.fixture(scope="module")
def server(files):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "wavesmith", "serve", "--root", str(files["root"]),
                             "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the studio did not start: {proc.stdout.read()[-2000:]}")
            time.sleep(0.3)
    yield url
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Debian chromium and chromium-driver are not installed")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("profile")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def _wait_text(driver, elem_id: str, wanted: str, timeout: float = 60.0) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = driver.find_element(By.ID, elem_id).text
        except (NoSuchElementException, StaleElementReferenceException):  # the page is still being built
            text = ""
        if wanted in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"#{elem_id} never said {wanted!r}; it says {text!r}")


def _tab(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    tabs = {b.text: b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]")}
    tabs[name].click()
    time.sleep(0.3)


def test_the_studio_in_a_browser(server, driver, files):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(server)
    # Database: the tab opens on the root's one database, summarised
    assert "20 clips" in _wait_text(driver, "db-status", "clips")
    tabs = [b.text for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]")]
    assert tabs == list(TABS)
    expected = {"Generate": "Generate", "Voice": "Clone a voice", "Transform": "Shift pitch", "Train": "Start",
                "Evaluate": "Evaluate", "Detect": "any audio file"}
    for name in TABS[1:]:  # each tab renders its controls
        _tab(driver, name)
        panel = driver.find_element(By.CSS_SELECTOR, "[role=tabpanel]:not([style*='display: none'])")
        assert panel.is_displayed() and expected[name] in driver.find_element(By.TAG_NAME, "body").text, name

    # a path that leaves the root is refused, in the page
    _tab(driver, "Database")
    box = driver.find_element(By.CSS_SELECTOR, "#db-pick input")
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("../outside", Keys.ENTER)
    assert "Refused" in _wait_text(driver, "db-status", "'..' is not allowed")

    # Generate from the shipped drums model: a file the browser can decode
    _tab(driver, "Generate")
    assert "mel-diffusion" in _wait_text(driver, "g-status", "drums")
    driver.find_element(By.CSS_SELECTOR, "#g-steps input, #g-steps textarea").send_keys("4")
    count = driver.find_element(By.CSS_SELECTOR, "#g-n input")
    count.send_keys(Keys.CONTROL, "a")
    count.send_keys("1")
    driver.find_element(By.ID, "g-go").click()
    assert "wrote 1 file(s)" in _wait_text(driver, "g-status", "wrote", timeout=180)
    links = driver.execute_script("return Array.from(document.querySelectorAll('#g-files a')).map(a => a.href)")
    wav = next(u for u in links if u.endswith(".wav"))
    assert any(u.endswith("generated.jsonl") for u in links)
    decoded = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then(r => r.arrayBuffer())
          .then(b => new OfflineAudioContext(1, 1, 22050).decodeAudioData(b))
          .then(a => done([a.duration, a.sampleRate]), e => done(String(e)));""", wav)
    assert isinstance(decoded, list) and decoded[0] >= 1.0 and decoded[1] == 22050, decoded
    images = driver.execute_script(
        "return Array.from(document.querySelectorAll('.clip-slot img')).map(i => i.naturalWidth)")
    assert images and all(w > 0 for w in images)

    # Detect: a corrupt upload is refused, then a marked file is found marked (the server kept serving)
    _tab(driver, "Detect")
    upload = driver.find_element(By.CSS_SELECTOR, "#d-in input[type=file]")
    upload.send_keys(str(files["corrupt"]))
    assert "cannot decode" in _wait_text(driver, "d-status", "Refused")
    driver.find_element(By.CSS_SELECTOR, "#d-in button[aria-label='Clear'], #d-in button[title='Clear']").click()
    upload = driver.find_element(By.CSS_SELECTOR, "#d-in input[type=file]")
    upload.send_keys(str(files["marked"]))
    said = _wait_text(driver, "d-status", "Marked")
    assert "Payload 1234" in said and "Content Credentials" in said

    # Transform: the shipped violin (the timbre offered first) plays an uploaded melody
    _tab(driver, "Transform")
    driver.find_element(By.CSS_SELECTOR, "#t-in input[type=file]").send_keys(str(files["melody"]))
    time.sleep(1.0)  # the upload lands in the component before the click reads it
    driver.find_element(By.ID, "t-transfer").click()
    assert "transfer-" in _wait_text(driver, "t-status", "wrote", timeout=120)

    # Voice: a speaker of the shipped speech model says a typed sentence
    _tab(driver, "Voice")
    driver.find_element(By.CSS_SELECTOR, "#v-text textarea").send_keys("Hello from the studio.")
    voice = driver.find_element(By.CSS_SELECTOR, "#v-voice input")
    voice.click()
    voice.send_keys("asterisk-allison", Keys.ENTER)
    driver.find_element(By.ID, "v-say").click()
    assert "wrote 1 file(s)" in _wait_text(driver, "v-status", "wrote", timeout=180)

    # nothing the page loaded came from anywhere but the studio
    remote = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => !n.startsWith(arguments[0]) && !n.startsWith('data:') && !n.startsWith('blob:'));", server)
    assert remote == []
