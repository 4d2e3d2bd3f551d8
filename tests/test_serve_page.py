"""The page of `asr serve`, driven in headless Chromium as a person uses it: enter the API key, choose a file, read
the transcript and its word times from the page, follow playback, build the subtitles it offers for download.

The system's browser is used (Debian's chromium and chromium-driver; tools/run_tests.sh installs them), nothing is
downloaded. ASR_PAGE_SCREENSHOT=docs/images/serve-page.png also saves a screenshot of the page for the docs."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import API_KEY

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver "
                                                                   "(bash tools/apt_install.sh chromium chromium-driver)")
SPEECH = Path(__file__).parent.parent / "examples" / "speech.flac"
REFERENCE = (SPEECH.parent / "speech.txt").read_text().strip()


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not look for a browser to download
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=900,800",
                     "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def open_page(browser, url: str, key: str):
    from selenium.webdriver.common.by import By

    browser.get(url)
    browser.find_element(By.CSS_SELECTOR, "#key-box summary").click()
    key_field = browser.find_element(By.ID, "api-key")
    key_field.clear()
    key_field.send_keys(key)
    browser.find_element(By.ID, "file").send_keys(str(SPEECH.resolve()))


def test_page_transcribes_a_file_with_word_times(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    url, _, _ = server
    open_page(browser, url, API_KEY)
    WebDriverWait(browser, 60).until(expected_conditions.visibility_of_element_located((By.ID, "transcript")))
    words = browser.find_elements(By.CSS_SELECTOR, "#transcript .word")
    assert " ".join(w.text for w in words) == REFERENCE
    assert all("s, confidence" in w.get_attribute("title") for w in words)
    assert "5.0 s, 15 words" in browser.find_element(By.ID, "status").text
    # Playback follows the words: at the middle of the third word, it is the one highlighted.
    third = browser.execute_script("return result.words[2]")
    browser.execute_script("const p = document.getElementById('player'); p.currentTime = arguments[0];"
                           "p.dispatchEvent(new Event('timeupdate'));", (third["start"] + third["end"]) / 2)
    assert [w.text for w in browser.find_elements(By.CSS_SELECTOR, "#transcript .word.current")] == ["CALL"]
    # What the download buttons save.
    srt = browser.execute_script("return RENDER.srt(result)")
    # (the first word starts within a frame of 0 s: voted passes average their times)
    assert re.match(r"1\n00:00:00,0\d\d --> 00:00:0\d,\d{3}\n", srt) and "ARRANGED" in srt
    assert re.match(r"WEBVTT\n\n00:00:00\.0\d\d --> ", browser.execute_script("return RENDER.vtt(result)"))
    assert browser.execute_script("return RENDER.txt(result)").strip() == REFERENCE
    if os.environ.get("ASR_PAGE_SCREENSHOT"):
        browser.execute_script("document.getElementById('key-box').open = false")
        browser.save_screenshot(os.environ["ASR_PAGE_SCREENSHOT"])


def test_page_says_when_the_key_is_wrong(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _, _ = server
    open_page(browser, url, "wrong key")
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 30).until(lambda _: "API key" in status.text)
    assert "Incorrect API key" in status.text and "error" in status.get_attribute("class")
    assert not browser.find_element(By.ID, "result").is_displayed()
