"""The review page in a real headless Chromium: sign in, see the queue, confirm and reject."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from enforcement.models import Violation
from remote_sensing.models import Snapshot
from tests.conftest import cli_json
from tests.integration.test_black_smoke import jpeg, metadata, upload

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)), reason="chromium/chromedriver not installed"
    ),
]


@pytest.fixture()
def server(app: Any) -> Iterator[str]:
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)


@pytest.fixture()
def browser(tmp_path: Any) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def submit(browser: Any, button: Any) -> None:
    """Click a submit button and wait until the next page replaced this one.

    The old document is marked and the wait ends when a document without the mark has
    loaded; asking an element of the old page whether it went stale races with Chromium.
    """
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script("window.__replaced_soon = true")
    button.click()
    WebDriverWait(browser, 10).until(
        lambda b: b.execute_script("return !window.__replaced_soon && document.readyState === 'complete'")
    )


def sign_in(browser: Any, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(password)
    submit(browser, browser.find_element(By.ID, "sign-in"))


def test_an_officer_confirms_and_rejects_in_the_browser(app, server, browser, make_station, runner, drain):
    from selenium.webdriver.common.by import By

    smoke = make_station("BS001", kind="black_smoke")
    dense = upload(smoke, metadata("dense", plate="苏B77777"), [jpeg(0.85), jpeg(0.45)]).get_json()["id"]
    light = upload(smoke, metadata("light"), [jpeg(0.45)]).get_json()["id"]
    drain()
    cli_json(runner, "users", "create", "--username", "li", "--password", "pw-li-2026", "--role", "env_officer",
             "--region", "320200")

    browser.get(server + "/review")
    assert browser.current_url.endswith("/review/login")  # not signed in yet
    sign_in(browser, "li", "wrong")
    assert "Wrong username or password" in browser.find_element(By.ID, "login-error").text
    sign_in(browser, "li", "pw-li-2026")

    sections = browser.find_elements(By.CSS_SELECTOR, "section.snapshot")
    assert [int(s.get_attribute("data-id")) for s in sections] == [dense, light]  # highest estimate first
    first = sections[0]
    assert first.find_element(By.CLASS_NAME, "plate").text == "苏B77777"
    assert first.find_element(By.CLASS_NAME, "estimate").text == "4"
    images = first.find_elements(By.TAG_NAME, "img")
    assert len(images) == 2  # side by side, decoded by the browser
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i) == 640
               for i in images)
    level = first.find_element(By.NAME, "ringelmann")
    assert level.get_attribute("value") == "4"  # max(estimate, limit + 1)
    second_level = sections[1].find_element(By.NAME, "ringelmann").get_attribute("value")
    assert second_level == "2"
    first.find_element(By.NAME, "note").send_keys("dense plume, lane 2")
    submit(browser, first.find_element(By.CSS_SELECTOR, "button.confirm"))

    flash = browser.find_element(By.CSS_SELECTOR, ".flash.ok").text
    assert f"Snapshot {dense} confirmed at Ringelmann 4" in flash
    sections = browser.find_elements(By.CSS_SELECTOR, "section.snapshot")
    assert [int(s.get_attribute("data-id")) for s in sections] == [light]
    submit(browser, sections[0].find_element(By.CSS_SELECTOR, "button.reject"))
    assert f"Snapshot {light} rejected." in browser.find_element(By.CSS_SELECTOR, ".flash.ok").text
    assert browser.find_element(By.ID, "empty").text == "Nothing waits for review."

    with app.extensions["lantian"].sessions() as s:
        confirmed, rejected = s.get(Snapshot, dense), s.get(Snapshot, light)
        assert (confirmed.status, confirmed.reviewed_level, confirmed.reviewed_by) == ("confirmed", 4, "user:li")
        assert confirmed.review_note == "dense plume, lane 2"
        assert rejected.status == "rejected" and rejected.violation_id is None
        violation = s.scalars(select(Violation)).one()
        assert violation.id == confirmed.violation_id and violation.source == "black_smoke"
        assert violation.case_id is not None
