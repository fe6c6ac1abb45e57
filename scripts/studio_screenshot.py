"""The README's picture of the studio: ``python scripts/studio_screenshot.py docs/studio.png``.

Builds a root with the bundled drum hits as a database, starts ``wavesmith serve`` on a
free port, generates two snares from the shipped ``drums`` model in headless Chromium
(Debian ``chromium`` and ``chromium-driver``) and saves the Generate tab as a small
palette PNG.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from wavesmith.db import Database, bundled_clips_dir


def main(out: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with Database.create(root / "drums.db", sample_rate=16000) as db:
            db.add([bundled_clips_dir()], label_from="parent", workers=1, progress=False)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "wavesmith", "serve", "--root", str(root), "--port",
                                   str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1100,1000", "--hide-scrollbars",
                     f"--user-data-dir={root / '.profile'}"):
            opts.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        try:
            url = f"http://127.0.0.1:{port}/"
            for _ in range(240):
                try:
                    urllib.request.urlopen(url, timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            driver.get(url)
            time.sleep(5)
            next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text == "Generate").click()
            time.sleep(3)
            label = driver.find_element(By.CSS_SELECTOR, "#g-label input")
            label.click()
            label.send_keys("snare", Keys.ENTER)
            driver.find_element(By.CSS_SELECTOR, "#g-seed input, #g-seed textarea").send_keys("3")
            count = driver.find_element(By.CSS_SELECTOR, "#g-n input")
            count.send_keys(Keys.CONTROL, "a")
            count.send_keys("2")
            driver.find_element(By.ID, "g-go").click()
            for _ in range(600):
                if "wrote" in driver.find_element(By.ID, "g-status").text:
                    break
                time.sleep(0.5)
            time.sleep(2)
            png = driver.get_screenshot_as_png()
        finally:
            driver.quit()
            server.send_signal(signal.SIGINT)
            server.wait(30)
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=64)
    image.save(out, optimize=True)
    print(f"{out}: {image.size[0]}x{image.size[1]}, {os.path.getsize(out) / 1024:.0f} KiB")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/studio.png")
