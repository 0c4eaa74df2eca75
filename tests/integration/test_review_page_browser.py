"""The review page in a real headless Chromium: sign in, see the queue, confirm and reject."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from enforcement.models import Violation
from remote_sensing.models import Snapshot
from tests.conftest import cli_json
from tests.integration.test_black_smoke import jpeg, metadata, upload
from tests.integration.test_black_smoke_page import set_estimate
from tests.integration.test_dashboard_page import november  # noqa: F401  (a fixture)

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
    # An officer's browser in China asks for Chinese (headless Chromium otherwise asks for en-US).
    options.add_argument("--lang=zh-CN")
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def navigate(browser: Any, action: Callable[[], Any]) -> None:
    """Do `action` (a click, a key) and wait until the next page replaced this one.

    The old document is marked and the wait ends when a document without the mark has
    loaded; asking an element of the old page whether it went stale races with Chromium.
    """
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script("window.__replaced_soon = true")
    action()
    WebDriverWait(browser, 10).until(
        lambda b: b.execute_script("return !window.__replaced_soon && document.readyState === 'complete'")
    )


def submit(browser: Any, button: Any) -> None:
    navigate(browser, button.click)


def sign_in(browser: Any, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(password)
    submit(browser, browser.find_element(By.ID, "sign-in"))


def test_an_officer_confirms_and_rejects_in_the_browser(app, server, browser, make_station, runner, drain, shots):
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
    assert "用户名或密码错误" in browser.find_element(By.ID, "login-error").text
    sign_in(browser, "li", "pw-li-2026")

    sections = browser.find_elements(By.CSS_SELECTOR, "section.snapshot")
    assert [int(s.get_attribute("data-id")) for s in sections] == [dense, light]  # highest estimate first
    first = sections[0]
    shots(browser, "0-queue-as-analysed")  # the analyser's own plume outlines
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
    assert f"抓拍 {dense} 已确认为林格曼 4 级" in flash
    sections = browser.find_elements(By.CSS_SELECTOR, "section.snapshot")
    assert [int(s.get_attribute("data-id")) for s in sections] == [light]
    submit(browser, sections[0].find_element(By.CSS_SELECTOR, "button.reject"))
    assert f"抓拍 {light} 已驳回。" in browser.find_element(By.CSS_SELECTOR, ".flash.ok").text
    assert browser.find_element(By.ID, "empty").text == "暂无待审核的抓拍。"

    with app.extensions["lantian"].sessions() as s:
        confirmed, rejected = s.get(Snapshot, dense), s.get(Snapshot, light)
        assert (confirmed.status, confirmed.reviewed_level, confirmed.reviewed_by) == ("confirmed", 4, "user:li")
        assert confirmed.review_note == "dense plume, lane 2"
        assert rejected.status == "rejected" and rejected.violation_id is None
        violation = s.scalars(select(Violation)).one()
        assert violation.id == confirmed.violation_id and violation.source == "black_smoke"
        assert violation.case_id is not None


@pytest.fixture()
def shots(tmp_path: Any) -> Any:
    """Where screenshots go: LANTIAN_TEST_SCREENSHOTS (to look at them), else the test's temp folder."""
    from pathlib import Path

    folder = Path(os.environ.get("LANTIAN_TEST_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return lambda browser, name: browser.save_screenshot(str(folder / f"{name}.png"))


def rect(browser: Any, element: Any) -> list[float]:
    box = browser.execute_script("var r = arguments[0].getBoundingClientRect(); return [r.x, r.y, r.width, r.height]",
                                 element)
    return [round(v) for v in box]


def test_the_console_enlarges_outlines_and_takes_shortcuts(app, server, browser, make_station, runner, drain,
                                                           client, login, shots):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    admin = login("admin")
    client.put("/api/v1/registry/vehicles", headers=admin, json={"vehicles": [{
        "plate": "苏B77777", "plate_color": "yellow", "fuel_type": "diesel", "category": "N3", "region": "320200",
        "use_nature": "operating"}]})
    smoke = make_station("BS001", kind="black_smoke", name="锡山大道东")
    dense = upload(smoke, metadata("dense", plate="苏B77777"), [jpeg(0.85), jpeg(0.45)]).get_json()["id"]
    light = upload(smoke, metadata("light", plate="苏B66666"), [jpeg(0.45)]).get_json()["id"]
    drain()
    set_estimate(app, dense, plume={"image": 0, "polygon": [[250, 150], [420, 140], [460, 260], [270, 280]],
                                    "bbox": [250, 140, 210, 140]})
    cli_json(runner, "users", "create", "--username", "li", "--password", "pw-li-2026", "--role", "env_officer",
             "--region", "320200")

    browser.get(server + "/review")
    sign_in(browser, "li", "pw-li-2026")
    assert browser.find_element(By.TAG_NAME, "h1").text == "待审核"
    assert "快捷键" in browser.find_element(By.ID, "shortcuts").text
    first = browser.find_element(By.ID, f"snapshot-{dense}")
    assert "selected" in first.get_attribute("class")  # the shortcuts act on the first snapshot at first
    image = first.find_element(By.CSS_SELECTOR, "a.enlarge img")
    outline = first.find_element(By.CSS_SELECTOR, "svg.plume")
    assert rect(browser, outline) == rect(browser, image)  # the overlay covers exactly the thumbnail
    polygon = first.find_element(By.CSS_SELECTOR, "svg.plume polygon")
    drawn = rect(browser, polygon)
    img_box = rect(browser, image)
    scale = img_box[3] / 360  # thumbnails are 240 px high, the image 360
    assert abs(drawn[0] - (img_box[0] + 250 * scale)) <= 2 and abs(drawn[2] - 210 * scale) <= 3
    assert "已登记 · 柴油 · 无所属企业" in first.find_element(By.CLASS_NAME, "vehicle").text
    assert "中国标准时间" in first.find_element(By.CLASS_NAME, "captured").text
    assert "BS001 锡山大道东" in first.find_element(By.CLASS_NAME, "station").text
    shots(browser, "1-queue")

    image.click()
    lightbox = browser.find_element(By.ID, "lightbox")
    large = lightbox.find_element(By.TAG_NAME, "img")
    WebDriverWait(browser, 5).until(lambda b: b.execute_script("return arguments[0].complete", large))
    assert rect(browser, large)[3] > 240 * 1.5  # larger than the thumbnail
    assert rect(browser, lightbox.find_element(By.CSS_SELECTOR, "svg.plume")) == rect(browser, large)
    shots(browser, "2-enlarged")
    ActionChains(browser).send_keys("\ue00c").perform()  # Escape
    assert not browser.find_elements(By.ID, "lightbox")

    keys = ActionChains(browser)
    keys.send_keys("j").perform()
    assert "selected" in browser.find_element(By.ID, f"snapshot-{light}").get_attribute("class")
    navigate(browser, lambda: ActionChains(browser).send_keys("r").perform())  # reject the selected one
    assert f"抓拍 {light} 已驳回。" in browser.find_element(By.CSS_SELECTOR, ".flash.ok").text
    typed = browser.find_element(By.ID, f"snapshot-{dense}").find_element(By.NAME, "note")
    typed.send_keys("cr")  # letters typed into a field are text, not shortcuts
    assert typed.get_attribute("value") == "cr"
    browser.find_element(By.TAG_NAME, "h1").click()
    navigate(browser, lambda: ActionChains(browser).send_keys("c").perform())  # confirm at the suggested level
    assert f"抓拍 {dense} 已确认为林格曼 4 级" in browser.find_element(By.CSS_SELECTOR, ".flash.ok").text

    navigate(browser, browser.find_element(By.ID, "tab-reviewed").click)
    decisions = browser.find_elements(By.CSS_SELECTOR, "section.snapshot.reviewed")
    assert [int(s.get_attribute("data-id")) for s in decisions] == [dense, light]  # latest decision first
    assert "已确认：林格曼 4 级" in decisions[0].find_element(By.CLASS_NAME, "outcome").text
    assert decisions[0].find_element(By.CLASS_NAME, "reviewer").text == "li"
    shots(browser, "3-reviewed")

    navigate(browser, browser.find_element(By.ID, "lang-en").click)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Reviewed"
    assert "China Standard Time" in browser.find_element(By.CLASS_NAME, "reviewed-at").text
    shots(browser, "4-reviewed-en")
    navigate(browser, browser.find_element(By.ID, "lang-zh").click)

    with app.extensions["lantian"].sessions() as s:
        assert s.get(Snapshot, dense).status == "confirmed" and s.get(Snapshot, light).status == "rejected"


def test_the_dashboard_in_the_browser(app, server, browser, runner, november, shots):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    cli_json(runner, "users", "create", "--username", "zhao", "--password", "pw-zhao-2026", "--role", "police",
             "--region", "320200")
    browser.get(server + "/dashboard")
    assert browser.current_url.endswith("/dashboard/login")
    sign_in(browser, "zhao", "pw-zhao-2026")
    browser.get(server + f"/dashboard?month={november}")
    charts = browser.find_elements(By.CSS_SELECTOR, "img.chart")
    assert len(charts) == 4
    WebDriverWait(browser, 10).until(lambda b: all(
        b.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", c) for c in charts))
    assert "4 / 60" in browser.find_element(By.ID, "quota").text
    assert "80.0%" in browser.find_element(By.ID, "winter").text
    browser.set_window_size(1400, 2000)  # the whole page in one picture
    shots(browser, "5-dashboard")
