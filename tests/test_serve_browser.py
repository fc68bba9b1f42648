"""The web page in a real headless browser (Debian's Chromium through Selenium): type a title, pick it from
the suggestions, ask for recommendations, see them listed."""

from __future__ import annotations

import os
import shutil

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("selenium.webdriver")

from gnnrec.models import RatingModel  # noqa: E402
from gnnrec.serving.app import create_app  # noqa: E402
from gnnrec.serving.service import Recommender  # noqa: E402
from gnnrec.testing.serving import CHROMEDRIVER, CHROMIUM, headless_chromium, running_server  # noqa: E402

WAIT_SECONDS = 20

# CI installs Chromium (make test's browser step), so there a missing browser fails the test instead of skipping it.
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()) and not os.environ.get("CI"),
    reason=f"the browser test needs Debian's chromium and chromedriver at {CHROMIUM} and {CHROMEDRIVER} "
    "(apt-get install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def server_url(gnn_checkpoint, u1_split):
    recommender = Recommender(RatingModel.load(gnn_checkpoint, u1_split), u1_split)
    try:
        with running_server(create_app(recommender)) as url:
            yield url
    finally:
        recommender.close()


@pytest.fixture
def browser(tmp_path):
    driver = headless_chromium(tmp_path / "chromium-profile")
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def test_type_pick_and_get_recommendations(server_url, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS)
    browser.get(server_url + "/")
    assert browser.title.startswith("gnnrec")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#occupation option")) > 1)  # /health answered
    assert "gnn model trained on ml-100k/u1" in browser.find_element(By.ID, "model-line").text
    button = browser.find_element(By.ID, "recommend")
    assert not button.is_enabled()  # nothing picked yet

    field = browser.find_element(By.ID, "liked-input")
    field.send_keys("movie 1")
    suggestion = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#suggestions .suggestion")))
    assert suggestion.text.startswith("Movie 1 (1951)")
    suggestion.click()
    chip = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#chosen .chip")))
    assert chip.get_attribute("data-movie-id") == "1" and "Movie 1 (1951)" in chip.text

    field.send_keys("Movie 2")
    wait.until(
        lambda d: any(s.text.startswith("Movie 2 (1952)") for s in d.find_elements(By.CSS_SELECTOR, ".suggestion"))
    )
    field.send_keys("\ue007")  # Enter picks the first suggestion
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chosen .chip")) == 2)

    browser.find_element(By.ID, "age").send_keys("31")
    Select(browser.find_element(By.ID, "gender")).select_by_value("F")
    Select(browser.find_element(By.ID, "occupation")).select_by_visible_text("writer")
    button.click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .recommendation")) == 10)
    rows = browser.find_elements(By.CSS_SELECTOR, "#results .recommendation")
    titles = [row.find_element(By.CLASS_NAME, "title").text for row in rows]
    assert all(title.startswith(("Movie ", "unknown")) for title in titles)
    assert not {"Movie 1 (1951)", "Movie 2 (1952)"} & set(titles)  # the films picked are not recommended
    assert rows[0].find_element(By.CLASS_NAME, "rank").text == "1."
    assert "10 films by gnn" in browser.find_element(By.ID, "status").text
    assert browser.find_element(By.ID, "error").text == ""


def test_errors_are_shown_on_the_page(server_url, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS)
    browser.get(server_url + "/")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#occupation option")) > 1)
    browser.find_element(By.ID, "liked-input").send_keys("movie 3")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#suggestions .suggestion"))[0].click()
    Select(browser.find_element(By.ID, "gender")).select_by_value("M")  # gender alone: the service refuses
    browser.find_element(By.ID, "recommend").click()
    wait.until(lambda d: d.find_element(By.ID, "error").text)
    assert "give all of age, gender, occupation or none of them" in browser.find_element(By.ID, "error").text
    assert browser.find_elements(By.CSS_SELECTOR, "#results .recommendation") == []
