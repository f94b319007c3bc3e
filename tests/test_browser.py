"""The drawing page and the Angular client's request in a real browser: Debian's Chromium driven by Selenium."""

import base64
import contextlib
import functools
import http.server
import os
import pathlib
import threading
import urllib.parse

import pytest

from testsupport import images

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMEDRIVER = pathlib.Path("/usr/bin/chromedriver")

if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
    pytest.skip("browser tests need Debian's chromium and chromium-driver "
                "(apt-get install -y chromium chromium-driver)", allow_module_level=True)

from selenium import webdriver  # noqa: E402 (only once we know there is a browser to drive)
from selenium.webdriver.common.actions import interaction  # noqa: E402
from selenium.webdriver.common.actions.action_builder import ActionBuilder  # noqa: E402
from selenium.webdriver.common.actions.pointer_input import PointerInput  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ONE, SEVEN = images.ONE, images.SEVEN  # Polylines in 0..1 of the canvas; the "7" is one stroke.
STEP = 4  # CSS pixels between pointer moves: a stroke is many small moves, as a hand makes it.
WAIT = 20  # Seconds for a prediction to come back, even on a busy CI machine.

CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-quic",
                "--disable-dev-shm-usage"]  # Containers often have a 64 MB /dev/shm, too small for Chromium.


def start_chrome(profile, width, height, mobile=False):
    """Chromium from Debian's packages with a fresh profile; never a browser Selenium Manager downloads."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS + [f"--user-data-dir={profile}", f"--window-size={width},{height}"]:
        options.add_argument(flag)
    if mobile:  # A phone: its viewport, its pixel density, and touch input.
        options.add_experimental_option("mobileEmulation",
                                        {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 3}})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # A Service with the driver's path is what keeps Selenium Manager from looking for (or fetching) one.
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)), options=options)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One desktop-sized Chromium for the module: starting one takes a second or two."""
    driver = start_chrome(tmp_path_factory.mktemp("chrome-profile"), 1280, 900)
    yield driver
    driver.quit()


@pytest.fixture()
def page(browser, live_server):
    """The drawing page, freshly loaded from the real server."""
    browser.get(live_server + "/")
    WebDriverWait(browser, WAIT).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#bars li")) == 10)
    browser.get_log("browser")  # Start each test with an empty console.
    return browser


def save_screenshot(driver, name, tmp_path):
    """The whole page as PNG in tmp_path, and in $SCREENSHOT_DIR when set, for people to look at."""
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    png = base64.b64decode(shot["data"])
    folders = [tmp_path] + ([pathlib.Path(os.environ["SCREENSHOT_DIR"])] if os.environ.get("SCREENSHOT_DIR") else [])
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.png").write_bytes(png)


def polyline(points, width, height, step=STEP):
    """Points (0..1 of the canvas) to offsets from its centre, every `step` CSS pixels along the lines."""
    corners = [((x - 0.5) * width, (y - 0.5) * height) for x, y in points]
    yield corners[0]
    for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
        count = max(1, round(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 / step))
        for index in range(1, count + 1):
            yield x0 + (x1 - x0) * index / count, y0 + (y1 - y0) * index / count


def draw(driver, points, kind=interaction.POINTER_MOUSE):
    """One stroke along the points with real pointer events: down, many small moves, up."""
    canvas = driver.find_element(By.ID, "canvas")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    offsets = list(polyline(points, canvas.size["width"], canvas.size["height"]))
    actions = ActionBuilder(driver, mouse=PointerInput(kind, kind), duration=0)
    actions.pointer_action.move_to(canvas, *offsets[0]).pointer_down()
    for x, y in offsets[1:]:
        actions.pointer_action.move_to(canvas, x, y)
    actions.pointer_action.pointer_up()
    actions.perform()


def clear(driver):
    """Press Clear: a blank canvas, no result, no error."""
    driver.find_element(By.ID, "clear").click()


def wait_for_answer(driver):
    """Wait until the page shows a digit or an error; return (digit, error) as shown."""
    def shown(driver):
        digit, error = (driver.find_element(By.ID, name).text for name in ("digit", "error"))
        return (digit, error) if digit or error else False

    return WebDriverWait(driver, WAIT).until(shown)


def bar_widths(driver):
    """Each digit's bar width as its style says, in percent, in the order of the bars."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#bars > li')].map(item => "
        "[Number(item.dataset.digit), parseFloat(item.querySelector('.fill').style.width)]);")


def chart_text(driver):
    """The chart as a person reads it, for failure messages."""
    return driver.find_element(By.ID, "bars").text.replace("\n", " ")


def assert_prediction(driver, expected):
    """The page shows `expected` with its confidence, a ten-bar chart whose widest bar is it, and the 28x28 image."""
    digit, error = wait_for_answer(driver)
    assert (digit, error) == (expected, ""), f"chart: {chart_text(driver)}"
    assert driver.find_element(By.ID, "confidence").text.endswith("% sure")
    widths = bar_widths(driver)
    assert [digit for digit, _ in widths] == list(range(10))
    assert max(widths, key=lambda pair: pair[1])[0] == int(expected)
    assert 99.0 <= sum(width for _, width in widths) <= 101.0
    preview = driver.find_element(By.CSS_SELECTOR, "#preview img")
    assert preview.is_displayed() and preview.get_attribute("src").startswith("data:image/png;base64,")
    assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", preview) == 28


def canvas_ink(driver):
    """The brightest red value on the canvas: 0 when it is all black."""
    return driver.execute_script(
        "const canvas = document.getElementById('canvas');"
        "const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;"
        "let most = 0; for (let i = 0; i < pixels.length; i += 4) most = Math.max(most, pixels[i]);"
        "return most;")


def severe_console_messages(driver):
    """Errors the page logged to the browser console."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_the_page_has_labelled_controls_and_a_keyboard_path(page, tmp_path):
    save_screenshot(page, "desktop-start", tmp_path)
    assert page.title == "Digit recognizer"
    for name in ("predict", "clear"):
        assert page.find_element(By.ID, name).tag_name == "button"
    file_input = page.find_element(By.ID, "file")
    assert file_input.get_attribute("accept") == "image/*"
    assert page.find_element(By.CSS_SELECTOR, "label[for=file]").get_attribute("textContent")
    tracks = page.find_elements(By.CSS_SELECTOR, "#bars > li .track")
    assert [track.get_attribute("aria-label") for track in tracks] == [f"Probability of {d}" for d in range(10)]
    assert page.find_element(By.ID, "error").get_attribute("aria-live") == "assertive"
    assert page.execute_script("return getComputedStyle(document.getElementById('canvas')).touchAction") == "none"
    focused = []
    for _ in range(3):
        webdriver.ActionChains(page).send_keys(Keys.TAB).perform()
        focused.append(page.execute_script(
            "const element = document.activeElement;"
            "return [element.id, getComputedStyle(element).outlineStyle];"))
    assert focused == [["predict", "solid"], ["clear", "solid"], ["file", "solid"]]
    assert severe_console_messages(page) == []


@pytest.mark.parametrize("name, points", [("1", ONE), ("7", SEVEN)])
def test_a_drawn_digit_is_read_when_the_stroke_ends(page, name, points, tmp_path):
    clear(page)
    draw(page, points)
    assert_prediction(page, name)
    assert page.find_element(By.ID, "source").text == "from your drawing"
    save_screenshot(page, f"desktop-drawn-{name}", tmp_path)


def test_the_predict_button_reads_the_canvas_again(page):
    clear(page)
    draw(page, SEVEN)
    assert_prediction(page, "7")
    page.execute_script("document.getElementById('digit').textContent = ''")
    page.find_element(By.ID, "predict").click()
    assert_prediction(page, "7")


def test_clear_empties_the_canvas_and_the_result(page):
    clear(page)
    draw(page, ONE)
    wait_for_answer(page)
    assert canvas_ink(page) == 255
    clear(page)
    assert canvas_ink(page) == 0
    for name in ("digit", "confidence", "error", "source"):
        assert page.find_element(By.ID, name).text == ""
    assert [width for _, width in bar_widths(page)] == [0.0] * 10
    assert not page.find_element(By.ID, "preview").is_displayed()
    assert page.find_element(By.CSS_SELECTOR, "#preview img").get_attribute("src") in (None, "")


def test_an_uploaded_file_is_read(page, tmp_path):
    photo = tmp_path / "seven-on-paper.png"  # Dark ink on white paper, as a photo or scan of one.
    images.drawn_digit(SEVEN, ink=30, paper=235).save(photo)
    clear(page)
    page.find_element(By.ID, "file").send_keys(str(photo))
    assert_prediction(page, "7")
    assert page.find_element(By.ID, "source").text == "from seven-on-paper.png"
    save_screenshot(page, "desktop-uploaded-7", tmp_path)


def test_a_file_dropped_on_the_drop_zone_is_read(page):
    png = base64.b64encode(images.encode(images.drawn_digit(ONE))).decode("ascii")
    clear(page)
    page.execute_script(
        "const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));"
        "const transfer = new DataTransfer();"
        "transfer.items.add(new File([bytes], 'one.png', {type: 'image/png'}));"
        "const zone = document.getElementById('drop-zone');"
        "zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: transfer, bubbles: true, cancelable: true}));"
        "zone.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));",
        png)
    assert_prediction(page, "1")
    assert page.find_element(By.ID, "source").text == "from one.png"


def test_predicting_a_blank_canvas_shows_the_apis_message(page, tmp_path):
    clear(page)
    page.find_element(By.ID, "predict").click()
    digit, error = wait_for_answer(page)
    assert digit == "" and error.startswith("No digit found")
    assert page.find_element(By.ID, "error").is_displayed()
    assert [width for _, width in bar_widths(page)] == [0.0] * 10
    save_screenshot(page, "desktop-no-digit", tmp_path)


def test_a_file_that_is_no_image_shows_the_apis_message(page, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture\n" * 20)
    clear(page)
    page.find_element(By.ID, "file").send_keys(str(notes))
    digit, error = wait_for_answer(page)
    assert digit == "" and "image" in error.lower()


def test_at_phone_width_nothing_scrolls_sideways_and_a_finger_draws(live_server, tmp_path):
    phone = start_chrome(tmp_path / "chrome-profile", 390, 844, mobile=True)
    try:
        phone.get(live_server + "/")
        WebDriverWait(phone, WAIT).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#bars li")) == 10)
        inner_width, scroll_width, canvas_right = phone.execute_script(
            "return [window.innerWidth, document.documentElement.scrollWidth,"
            " document.getElementById('canvas').getBoundingClientRect().right];")
        assert inner_width == 390
        assert scroll_width <= inner_width and canvas_right <= inner_width
        draw(phone, SEVEN, kind=interaction.POINTER_TOUCH)
        assert_prediction(phone, "7")
        assert phone.execute_script("return document.documentElement.scrollWidth") <= inner_width
        save_screenshot(phone, "phone-drawn-7", tmp_path)
    finally:
        phone.quit()


ANGULAR_CLIENT = """<!doctype html>
<meta charset="utf-8">
<title>Angular client's request</title>
<script>
// What the Angular client does: draw on a 400x400 canvas, POST it as FormData field `file` to /upload.
window.uploadResult = null;
(async () => {
  try {
    const canvas = document.createElement("canvas");
    canvas.width = 400;
    canvas.height = 400;
    const context = canvas.getContext("2d");
    context.fillStyle = "black";
    context.fillRect(0, 0, 400, 400);
    context.strokeStyle = "white";
    context.lineWidth = 15;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    context.moveTo(100, 80);
    context.lineTo(300, 80);
    context.lineTo(180, 340);
    context.stroke();
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    const form = new FormData();
    form.append("file", blob, "canvas.png");
    const api = new URLSearchParams(location.search).get("api");
    const response = await fetch(api + "/upload", {method: "POST", body: form, mode: "cors"});
    const body = await response.json();
    window.uploadResult = {status: response.status, type: typeof body, body: body};
  } catch (error) {
    window.uploadResult = {error: String(error)};
  }
})();
</script>
"""


@contextlib.contextmanager
def static_server(folder):
    """Serve folder over HTTP on a free port of 127.0.0.1 from a thread; yield the port."""
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        """Files from folder, without a log line per request."""

        def log_message(self, *args):
            """Keep the test output clean."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_angular_clients_cross_origin_request_gets_a_bare_digit(browser, live_server, tmp_path):
    (tmp_path / "client.html").write_text(ANGULAR_CLIENT)
    api_port = urllib.parse.urlsplit(live_server).port
    api = f"http://localhost:{api_port}"  # Another port, so another origin than the page.
    browser.get_log("browser")
    with static_server(tmp_path) as client_port:
        browser.get(f"http://localhost:{client_port}/client.html?" + urllib.parse.urlencode({"api": api}))
        result = WebDriverWait(browser, WAIT).until(lambda driver: driver.execute_script("return window.uploadResult"))
        origin = browser.execute_script("return location.origin")
    messages = [entry["message"] for entry in browser.get_log("browser")]
    assert origin != api
    assert result == {"status": 200, "type": "string", "body": "7"}
    assert not [message for message in messages if "CORS" in message or "Access-Control" in message], messages


def test_a_drawn_number_is_read_with_a_box_and_bars_per_digit(page, tmp_path):
    one = [(0.25, 0.2), (0.25, 0.8)]
    seven = [(0.45, 0.2), (0.7, 0.2), (0.55, 0.8)]
    clear(page)
    draw(page, one)
    draw(page, seven)
    WebDriverWait(page, WAIT).until(lambda driver: driver.find_element(By.ID, "digit").text == "17")
    boxes = page.find_elements(By.CSS_SELECTOR, "#canvas-boxes .box")
    assert [box.text for box in boxes] == ["1", "7"]
    assert boxes[0].location["x"] < boxes[1].location["x"]
    buttons = page.find_elements(By.CSS_SELECTOR, "#digits button")
    assert [button.get_attribute("aria-pressed") for button in buttons] == ["true", "false"]
    assert max(bar_widths(page), key=lambda pair: pair[1])[0] == 1
    buttons[1].click()
    assert max(bar_widths(page), key=lambda pair: pair[1])[0] == 7
    assert "chosen" in boxes[1].get_attribute("class")
    save_screenshot(page, "desktop-drawn-17", tmp_path)
    clear(page)
    assert page.find_elements(By.CSS_SELECTOR, "#canvas-boxes .box") == []
    assert not page.find_element(By.ID, "digits").is_displayed()


def test_an_uploaded_number_shows_its_boxes_over_the_picture(page, tmp_path):
    picture = tmp_path / "number.png"
    # Two digits side by side on a wide picture: a "1", then a "7".
    from PIL import Image

    left = images.drawn_digit(ONE, box=(0.05, 0.1, 0.45, 0.9))
    right = images.drawn_digit(SEVEN, box=(0.1, 0.1, 0.9, 0.9))
    wide = Image.new("L", (700, 400), 0)
    wide.paste(left, (0, 0))
    wide.paste(right, (250, 0))
    wide.save(picture)
    clear(page)
    page.find_element(By.ID, "file").send_keys(str(picture))
    WebDriverWait(page, WAIT).until(lambda driver: driver.find_element(By.ID, "digit").text == "17")
    assert page.find_element(By.ID, "upload-view").is_displayed()
    assert [box.text for box in page.find_elements(By.CSS_SELECTOR, "#upload-boxes .box")] == ["1", "7"]
    save_screenshot(page, "desktop-uploaded-17", tmp_path)


def test_at_phone_width_a_number_fits(live_server, tmp_path):
    phone = start_chrome(tmp_path / "chrome-profile", 390, 844, mobile=True)
    try:
        phone.get(live_server + "/")
        WebDriverWait(phone, WAIT).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#bars li")) == 10)
        draw(phone, [(0.25, 0.2), (0.25, 0.8)], kind=interaction.POINTER_TOUCH)
        draw(phone, [(0.45, 0.2), (0.7, 0.2), (0.55, 0.8)], kind=interaction.POINTER_TOUCH)
        WebDriverWait(phone, WAIT).until(lambda driver: driver.find_element(By.ID, "digit").text == "17")
        assert phone.execute_script("return document.documentElement.scrollWidth") <= 390
        save_screenshot(phone, "phone-drawn-17", tmp_path)
    finally:
        phone.quit()
