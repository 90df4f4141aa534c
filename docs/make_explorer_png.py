"""Regenerate docs/explorer.png: the HTML explorer in headless Chromium, one dx cell selected.

    python docs/make_explorer_png.py

Needs Chromium and its driver from the OS packages (apt-get install chromium
chromium-driver) and selenium (the ``test`` extra). Nothing is downloaded.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from convgrad.explain import html

OUT = Path(__file__).resolve().parent / "explorer.png"
WIDTH = 1280


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="convgrad-explorer-"))
    page = folder / "explorer.html"
    html(page, input_size=(5, 5), kernel_size=(3, 3), stride=2, padding=1)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                 f"--window-size={WIDTH},1000", f"--user-data-dir={folder / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"),
                              options=options)
    try:
        driver.get(page.as_uri())
        driver.execute_script("window.convgrad.select('dx', '1,2')")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(WIDTH, height + 40)
        driver.execute_script("window.convgrad.select('dx', '1,2')")
        driver.save_screenshot(str(OUT))
    finally:
        driver.quit()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
