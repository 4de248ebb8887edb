"""gancli serve for real: the server in a subprocess on a free loopback port, the page in headless Chromium
(Debian's chromium + chromium-driver, driven by Selenium), and a small load of concurrent requests."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="gancli serve needs the serve extra: pip install 'gancli[serve]'")
pytest.importorskip("uvicorn", reason="gancli serve needs the serve extra: pip install 'gancli[serve]'")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.serve_load import hammer, serving, tiny_models  # noqa: E402

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
DRIVER = shutil.which("chromedriver")
TIMEOUT_S = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(process, base URL) of `gancli serve STYLEGAN_RUN BIGGAN_CKPT --port 0`."""
    with serving(tiny_models(tmp_path_factory.mktemp("served"))) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("Chromium or chromedriver not found (apt-get install chromium chromium-driver; .ci/run does it as root)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (the test extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,1000", "--hide-scrollbars"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(TIMEOUT_S)
    yield driver
    driver.quit()


def _wait(browser, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, TIMEOUT_S, poll_frequency=0.05).until(lambda _: condition(), message=what)


def _tiles(browser):
    return browser.find_elements("css selector", "#grid figure")


def _grid_ready(browser, count: int = 16) -> bool:
    images = browser.find_elements("css selector", "#grid img")
    return len(images) == count and all((im.get_attribute("src") or "").startswith("data:image/png") for im in images)


def _choose(browser, element_id: str, *, value=None, text=None) -> None:
    from selenium.webdriver.support.ui import Select

    select = Select(browser.find_element("id", element_id))
    select.select_by_value(value) if value is not None else select.select_by_visible_text(text)


def drive_page(browser, url: str, *, w_space_model: str, conditional_model=None, class_name=None,
               styles: str = "coarse", picks=(0, 1), screenshot=None) -> dict:
    """The page as a user works it: move the truncation slider (the images change), pick a class, walk,
    style-mix two picked images; saves a screenshot after the style mix. Returns what it saw."""
    from selenium.webdriver.common.keys import Keys

    seen = {}
    browser.get(url)
    _wait(browser, lambda: _grid_ready(browser), "the first seed grid")
    _choose(browser, "model", value=w_space_model)
    _wait(browser, lambda: _grid_ready(browser), "the W-space model's grid")
    first = _tiles(browser)[0].find_element("tag name", "img").get_attribute("src")
    slider = browser.find_element("id", "truncation")
    before = slider.get_attribute("value")
    slider.send_keys(Keys.ARROW_LEFT * 4)
    _wait(browser, lambda: _tiles(browser)[0].find_element("tag name", "img").get_attribute("src") != first,
          "the grid redrawn at the new truncation")
    seen["truncation"] = (before, slider.get_attribute("value"), browser.find_element("id", "truncation-value").text)

    if conditional_model is not None:
        _choose(browser, "model", value=conditional_model)
        _wait(browser, lambda: _grid_ready(browser) and browser.find_element("id", "class-control").is_displayed(),
              "the conditional model's grid and class picker")
        _choose(browser, "class", text=class_name)
        _wait(browser, lambda: all(f.text.endswith(class_name) for f in _tiles(browser)),
              f"every image of class {class_name}")
        seen["captions"] = [f.text for f in _tiles(browser)][:3]
        _choose(browser, "model", value=w_space_model)
        _wait(browser, lambda: _grid_ready(browser) and browser.find_element("id", "style-panel").is_displayed(),
              "the W-space model again")

    for index in picks:
        _tiles(browser)[index].click()
    browser.find_element("id", "walk-button").click()
    player = browser.find_element("id", "walk-player")
    _wait(browser, lambda: player.is_displayed() and (player.get_attribute("src") or "").startswith("data:"), "a walk")
    frames = set()
    _wait(browser, lambda: frames.add(player.get_attribute("src")) or len(frames) >= 3, "the walk playing")
    seen["walk_frames_seen"] = len(frames)

    browser.find_element("id", "sweep-button").click()
    _wait(browser, lambda: len(browser.find_elements("css selector", "#sweep-strip img")) == 5, "the truncation sweep")
    seen["sweep_captions"] = [f.text for f in browser.find_elements("css selector", "#sweep-strip figcaption")]

    _choose(browser, "styles", value=styles)
    browser.find_element("id", "style-mix-button").click()
    result = browser.find_element("id", "mix-result")
    _wait(browser, lambda: result.is_displayed() and (result.get_attribute("src") or "").startswith("data:"),
          "the style mix")
    seen["mix_caption"] = browser.find_element("id", "mix-caption").text
    seen["mix_download"] = browser.find_element("id", "style-mix-download").get_attribute("href")
    seen["error"] = browser.find_element("id", "error").text
    if screenshot is not None:
        browser.save_screenshot(str(screenshot))
    seen["console"] = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    return seen


def test_the_page_in_a_real_browser(server, browser, tmp_path):
    _, url = server
    shot = Path(os.environ.get("GANCLI_SERVE_SCREENSHOT", tmp_path / "serve.png"))
    seen = drive_page(browser, url, w_space_model="0", conditional_model="1", class_name="Sneaker", screenshot=shot)
    before, after, shown = seen["truncation"]
    assert float(after) < float(before) and shown == f"{float(after):.2f}"
    assert seen["captions"] == ["0 · Sneaker", "1 · Sneaker", "2 · Sneaker"]
    assert seen["walk_frames_seen"] >= 3
    assert seen["sweep_captions"] == ["ψ 0", "ψ 0.25", "ψ 0.5", "ψ 0.75", "ψ 1"]
    assert seen["mix_caption"] == "B with A's coarse styles (w layers 0, 1, 2, 3)"
    assert "/api/models/0/style-mix.png?" in seen["mix_download"] and "source=0" in seen["mix_download"]
    assert seen["error"] == "" and seen["console"] == []  # no failed request, no script error, no blocked load
    assert shot.stat().st_size > 10_000


def test_concurrent_requests_are_all_answered_with_bounded_memory(server):
    process, url = server
    result = hammer(process, url, requests=50, concurrency=50)
    assert result.statuses == {200: 50}
    assert result.peak_rss_mib - result.rss_before_mib < 300
