"""Headless Chromium (Debian's chromium + chromedriver) driven by Selenium, phone-sized (375×812)."""

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.clock import StackClock
from tests.support.http import Simulators
from tests.support.infra import ARTIFACTS

SCREENSHOTS = ARTIFACTS / "screenshots"


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic", "--lang=zh-CN"):
        options.add_argument(flag)
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": 375, "height": 812,
                                                                           "pixelRatio": 2}})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


class Page:
    """What a payer does on the phone: fill, tap, read; screenshots under test-artifacts/screenshots/."""

    def __init__(self, driver, base_url):
        self.driver, self.base_url = driver, base_url
        self.wait = WebDriverWait(driver, 20)

    def open(self, hash_route="#/"):
        self.driver.get(f"{self.base_url}/{hash_route}")
        self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#app > *")))

    def fill(self, name, value):
        element = self.wait.until(EC.visibility_of_element_located((By.NAME, name)))
        element.clear()
        element.send_keys(value)

    def tap(self, css):
        self.wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, css))).click()

    def tap_text(self, text):
        self.wait.until(EC.element_to_be_clickable(
            (By.XPATH, f"//button[normalize-space(text())='{text}' or starts-with(normalize-space(.), '{text}')]"))).click()

    def title(self):
        return self.driver.find_element(By.ID, "title").text

    def wait_title(self, text):
        self.wait.until(EC.text_to_be_present_in_element((By.ID, "title"), text))

    def error_for(self, name):
        return self.driver.find_element(By.CSS_SELECTOR, f'[data-err="{name}"]').text

    def wait_error(self, name, contains):
        self.wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, f'[data-err="{name}"]'), contains))

    def screenshot(self, name):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


@pytest.fixture
def page(browser, stack):
    browser.delete_all_cookies()
    page = Page(browser, stack.gateway_url)
    page.open()
    browser.execute_script("sessionStorage.clear()")
    return page


@pytest.fixture
def sims(stack):
    return Simulators(stack.sim_url)


@pytest.fixture
def clock(sims):
    clock = StackClock(sims)
    yield clock
    clock.reset()
