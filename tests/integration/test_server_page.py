"""The web page in a real headless Chromium (Debian's chromium and chromium-driver, installed by `make test`).

It types a query, waits for the columns, and checks them against the API: the hits of
each view, the highlighting of documents shared by several views, and the Jaccard
matrix. A screenshot goes to the test's temporary folder; with LAYERWISE_SCREENSHOT_DIR
set (the README's picture: LAYERWISE_SCREENSHOT_DIR=docs pytest tests/integration/test_server_page.py)
a copy goes there too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from layerwise.api import Library
from layerwise.server import create_app
from tests.integration.serving import home_copy, serving

QUERY = "how do I rotate the logs"
VIEWS = ["0", "-1", "bm25", "rrf(bm25 | -1)"]
K = 5


def _executables() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    found = _executables()
    if found is None:
        pytest.skip("Chromium and chromedriver are not installed (make test installs Debian's packages when root)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800",
                 "--force-device-scale-factor=1", "--lang=en-US"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    # the page itself gets 1280x800 CSS pixels, whatever the window's frame takes
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def page(sample_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Library]]:
    library = Library(home_copy(sample_home, tmp_path_factory.mktemp("page") / "home"), device="cpu", query_encoder="full")
    with serving(create_app(library)) as url:
        yield url, library


def test_the_page_compares_views_like_the_api(browser, page, tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    url, library = page
    expected = library.open("sample").compare(QUERY, VIEWS, K).to_dict()
    query_string = "&".join(f"view={v.replace(' ', '%20').replace('|', '%7C')}" for v in VIEWS)
    browser.get(f"{url}/?collection=sample&{query_string}")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#collection option"))
    box = browser.find_element(By.ID, "k")
    box.clear()
    box.send_keys(str(K))
    browser.find_element(By.TAG_NAME, "body").send_keys("/")  # the keyboard shortcut focuses the query box
    browser.switch_to.active_element.send_keys(QUERY, Keys.ENTER)
    WebDriverWait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".column")) == len(VIEWS)
                                     and all(c.find_elements(By.CSS_SELECTOR, ".hit") for c in d.find_elements(By.CSS_SELECTOR, ".column")))

    columns = browser.find_elements(By.CSS_SELECTOR, ".column")
    shown = {c.get_attribute("data-view"): [h.get_attribute("data-doc") for h in c.find_elements(By.CSS_SELECTOR, ".hit")] for c in columns}
    wanted = {r["view"]: [h["doc_id"] for h in r["hits"]] for r in expected["results"]}
    assert shown == wanted
    assert shown["layer6"][0] == "ops/log-rotation.md" and shown["bm25"]

    counts: dict[str, int] = {}
    for docs in wanted.values():
        for doc in docs:
            counts[doc] = counts.get(doc, 0) + 1
    for card in browser.find_elements(By.CSS_SELECTOR, ".hit"):
        assert ("shared" in card.get_attribute("class").split()) == (counts[card.get_attribute("data-doc")] > 1)
    assert any(n > 1 for n in counts.values()) and any(n == 1 for n in counts.values())

    cells = [[float(td.text) for td in row.find_elements(By.TAG_NAME, "td")] for row in browser.find_elements(By.CSS_SELECTOR, "#jaccard tr")[1:]]
    assert cells == [[round(v, 2) for v in row] for row in expected["jaccard"]["matrix"]]

    browser.save_screenshot(str(tmp_path / "server-page.png"))
    if os.environ.get("LAYERWISE_SCREENSHOT_DIR"):
        target = Path(os.environ["LAYERWISE_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "server-page.png", target / "server-page.png")


def test_the_runs_tab_charts_a_stored_run(browser, page, tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from layerwise.evaluation.datasets import read_qrels, read_queries
    from tests.integration.conftest import SAMPLE

    url, library = page
    kb = library.open("sample")
    kb.evaluate(read_queries(SAMPLE / "queries.jsonl"), read_qrels(SAMPLE / "qrels.tsv"), ["all", "bm25", "rrf(bm25 | -1)"], trials=200)
    browser.get(f"{url}/?collection=sample")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#collection option"))
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ALT, "2")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#run-detail svg rect"))
    run = kb.runs()[0]
    rows = browser.find_elements(By.CSS_SELECTOR, "#run-detail table tr")[1:]
    assert [r.find_element(By.TAG_NAME, "td").text.rstrip(" *") for r in rows] == [v["name"] for v in run["views"]]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#run-detail svg rect")) == len(run["views"])
    browser.save_screenshot(str(tmp_path / "server-runs.png"))
    if os.environ.get("LAYERWISE_SCREENSHOT_DIR"):
        shutil.copy(tmp_path / "server-runs.png", Path(os.environ["LAYERWISE_SCREENSHOT_DIR"]) / "server-runs.png")
