"""The web page in a real headless browser (Debian's chromium, driven by selenium through
/usr/bin/chromedriver; nothing is downloaded): ask, teach the fact, see the answer change, roll back.

Skips when chromium is absent, except under CI (`CI` set), where `.ci/run` installs it and its absence
is a failure. `SELFPARAM_SCREENSHOT=path.png` saves the page after teaching (docs/server.png).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from server_util import ANSWER, DOCUMENT, QUESTION, ThreadServer, teaching_config, write_pairs

from selfparam.eval.configs import build_dataclass, config_class
from selfparam.server import Engine, ServerSettings, create_app
from selfparam.store import KnowledgeStore
from selfparam.testing import tiny_lm

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        reason = "chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}; .ci/run installs them")
        pytest.skip(reason)
    os.environ.setdefault("SE_AVOID_STATS", "true")  # selenium: no usage statistics sent
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1400,820", f"--user-data-dir={tempfile.mkdtemp(prefix='selfparam-chromium-')}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@pytest.fixture
def page(tmp_path):
    driver = browser()
    lm = tiny_lm(seed=0)
    config = build_dataclass(config_class("ft-s"), teaching_config(write_pairs(tmp_path / "pairs.jsonl")), "test")
    engine = Engine(KnowledgeStore.create(tmp_path / "kb", "ft-s", lm.name), lm, config)
    try:
        with ThreadServer(create_app(engine, ServerSettings(default_max_new_tokens=8))) as server:
            driver.get(server.url + "/")
            yield driver
    finally:
        driver.quit()


@pytest.mark.long
def test_ask_teach_see_the_answer_change_and_roll_back(page):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # the page re-renders the version list when it changes: an element found just before may be replaced
    wait = WebDriverWait(page, 60, poll_frequency=0.1,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
    find = page.find_element

    def ask() -> tuple[str, str]:
        count = len(page.find_elements(By.CSS_SELECTOR, ".answer"))
        find(By.ID, "question").clear()
        find(By.ID, "question").send_keys(QUESTION)
        find(By.ID, "ask").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".answer")) > count)
        last = page.find_elements(By.CSS_SELECTOR, ".answer")[-1]
        return last.find_element(By.CLASS_NAME, "text").text, last.get_attribute("data-version")

    wait.until(lambda d: "serving" in d.find_element(By.ID, "version-0").text)
    before, version = ask()
    assert version == "v0" and before != ANSWER

    find(By.ID, "doc").send_keys(DOCUMENT)
    find(By.ID, "teach").click()
    wait.until(lambda d: d.find_element(By.ID, "job").get_attribute("data-state") in ("done", "failed"))
    assert find(By.ID, "job").get_attribute("data-state") == "done", find(By.ID, "job").text
    assert "version 1 is serving" in find(By.ID, "job").text
    wait.until(lambda d: d.find_elements(By.ID, "version-1") and "serving" in d.find_element(By.ID, "version-1").text)

    assert ask() == (ANSWER, "v1")
    if os.environ.get("SELFPARAM_SCREENSHOT"):
        page.save_screenshot(str(Path(os.environ["SELFPARAM_SCREENSHOT"])))

    def roll_back(d) -> bool:
        d.find_element(By.CSS_SELECTOR, "#version-0 button.activate").click()
        return True

    wait.until(roll_back)
    wait.until(lambda d: "serving" in d.find_element(By.ID, "version-0").text)
    assert ask() == ((before or "(empty answer)"), "v0")
