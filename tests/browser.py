"""A real browser for tests of pages: Debian's headless Chromium driven by selenium through
Debian's chromedriver (no browser or driver is downloaded), with the network switched off.

    with chromium() as browser:
        seen = look_at(browser, Path("report.html"), screenshot=Path("page.png"))

`python tests/browser.py PAGE.html SHOT.png` takes the screenshot a doc shows.
"""

import base64
import io
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run")  # fmt: skip
WIDTH, HEIGHT = 1280, 1600
INK = 0.01  # a drawn chart: at least 1 % of its area differs from the page's background


def missing() -> str | None:
    """Why no browser test can run here (None: it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the dev extra)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            return f"{path} is absent: apt-get install -y chromium chromium-driver"
    return None


@contextmanager
def chromium():
    """A headless Chromium on a fresh profile, offline (DevTools network emulation), its
    console kept for browser_errors."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="fc-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", offline)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def browser_errors(driver) -> list[str]:
    """The console's errors since the last call (a failed load, a script error)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def full_screenshot(driver) -> bytes:
    """The whole page as PNG, not only the window (DevTools beyond the viewport)."""
    shot = driver.execute_cdp_cmd("Page.captureScreenshot",
                                  {"format": "png", "captureBeyondViewport": True})  # fmt: skip
    return base64.b64decode(shot["data"])


def look_at(driver, page: Path, screenshot: Path | None = None) -> dict:
    """Open `page` and say what rendered: {"tables": rows of each table, "charts": per chart
    figure (data-chart) whether its image decoded and the share of its area in ink, "errors":
    the console's errors}; the window's screenshot saved to `screenshot` if given."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    driver.get(Path(page).resolve().as_uri())
    tables = [len(t.find_elements(By.CSS_SELECTOR, "tbody tr"))
              for t in driver.find_elements(By.TAG_NAME, "table")]  # fmt: skip
    charts = []
    for figure in driver.find_elements(By.CSS_SELECTOR, "figure.chart"):
        image = figure.find_element(By.TAG_NAME, "img")
        driver.execute_script("arguments[0].scrollIntoView(true);", figure)
        decoded = driver.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0;", image)  # fmt: skip
        pixels = Image.open(io.BytesIO(figure.screenshot_as_png)).convert("RGB")
        background = pixels.getpixel((0, 0)) if not decoded else (255, 255, 255)
        inked = sum(count for count, colour in pixels.getcolors(1 << 24) if colour != background)
        charts.append({"chart": figure.get_attribute("data-chart"), "decoded": bool(decoded),
                       "ink": inked / (pixels.width * pixels.height)})  # fmt: skip
    if screenshot is not None:
        driver.execute_script("window.scrollTo(0, 0);")
        Path(screenshot).write_bytes(driver.get_screenshot_as_png())
    return {"tables": tables, "charts": charts, "errors": browser_errors(driver)}


def rendered(seen: dict) -> bool:
    """Every table has rows, every chart decoded and drew, the console is clean."""
    charts_ok = all(c["decoded"] and c["ink"] >= INK for c in seen["charts"])
    return bool(seen["tables"]) and all(seen["tables"]) and charts_ok and not seen["errors"]


if __name__ == "__main__":
    with chromium() as browser:
        seen = look_at(browser, Path(sys.argv[1]), Path(sys.argv[2]))
    print(seen, "rendered" if rendered(seen) else "NOT rendered")
