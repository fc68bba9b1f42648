"""The screenshot of the web page in ``docs/serving.md``: a real checkpoint served on 127.0.0.1, a person
who liked five films picked from the search-as-you-type list, their recommendations, in headless Chromium.

    python benchmarks/screenshot_web_page.py CHECKPOINT --data-dir ../shared/data/ml-100k --out docs/img/web_page.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from argparse import Namespace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gnnrec.benchmark import harness  # noqa: E402
from gnnrec.cli.common import load_checkpoint  # noqa: E402
from gnnrec.serving import Recommender  # noqa: E402
from gnnrec.serving.app import create_app  # noqa: E402
from gnnrec.testing.serving import headless_chromium, running_server  # noqa: E402
from gnnrec.utils import atomic_path  # noqa: E402

LIKED = ("Star Wars", "Fargo", "Toy Story", "Silence of the Lambs", "Godfather")
PERSON = {"age": "34", "gender": "F", "occupation": "writer"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    harness.add_options(parser, data_dir=True, threads=None)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "web_page.png")
    parser.add_argument("--liked", nargs=len(LIKED), default=list(LIKED), metavar="TITLE", help="the five liked films")
    args = parser.parse_args(argv)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    data = Namespace(dataset=None, split=None, data_dir=args.data_dir, val_fraction=None, data_seed=None)
    model, split = load_checkpoint(args.checkpoint, data)
    recommender = Recommender(model, split)
    with tempfile.TemporaryDirectory() as profile, running_server(create_app(recommender)) as url:
        browser = headless_chromium(Path(profile), width=900, height=1440)
        try:
            wait = WebDriverWait(browser, 30)
            browser.get(url + "/")
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#occupation option")) > 1)
            field = browser.find_element(By.ID, "liked-input")
            for number, title in enumerate(args.liked, start=1):
                field.send_keys(title)
                wait.until(lambda d, t=title: any(t.split()[-1] in s.text for s in
                                                  d.find_elements(By.CSS_SELECTOR, ".suggestion")))  # fmt: skip
                browser.find_element(By.CSS_SELECTOR, "#suggestions .suggestion").click()
                wait.until(lambda d, n=number: len(d.find_elements(By.CSS_SELECTOR, "#chosen .chip")) == n)
            browser.find_element(By.ID, "age").send_keys(PERSON["age"])
            Select(browser.find_element(By.ID, "gender")).select_by_value(PERSON["gender"])
            Select(browser.find_element(By.ID, "occupation")).select_by_visible_text(PERSON["occupation"])
            browser.find_element(By.ID, "recommend").click()
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .recommendation")) == 10)
            with atomic_path(args.out) as tmp:
                tmp.write_bytes(browser.get_screenshot_as_png())
        finally:
            browser.quit()
    recommender.close()
    print(f"{args.out}: {model.name} on {split.name}, liked {', '.join(args.liked)}; {PERSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
