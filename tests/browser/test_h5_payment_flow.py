"""The whole 掌上办 flow in a phone-sized headless Chromium against the real stack:
login → 个人缴费 (sequential selection) → 确认 → 立即缴费 → 确认缴费 → the channel's page (确认支付) →
返回商户 → 您已经付款…元 → 证明开具 (both PDFs) → 记录查询 shows the payment."""
import base64
from datetime import datetime, timedelta

from servicekit.clock import SHANGHAI

from selenium.webdriver.common.by import By

from tests.support.http import add_bureau_plan, sync_bureaus
from tests.support.h5 import log_in
from tests.support.people import new_id_number, new_phone

def months_before(today, count):
    periods = []
    for back in range(count, 0, -1):
        year, month = divmod(today.year * 12 + today.month - 1 - back, 12)
        periods.append(f"{year}-{month + 1:02d}")
    return periods


def set_range(page, paid_on):
    page.driver.execute_script(f"document.querySelector('[name=paid_from]').value='{paid_on[:4]}-01-01';"
                               f"document.querySelector('[name=paid_to]').value='{paid_on}';")


def checked(page):
    return [box.is_selected() for box in page.driver.find_elements(By.CSS_SELECTOR, "#plans input[type=checkbox]")]


def download_pdf(page, kind_label):
    """Click a certificate button and read the PDF the page downloaded (through the blob URL it made)."""
    page.driver.execute_script("""
        window.__pdf = null;
        const original = URL.createObjectURL;
        URL.createObjectURL = blob => { blob.arrayBuffer().then(b => {
            window.__pdf = btoa(String.fromCharCode(...new Uint8Array(b))); }); return original(blob); };""")
    page.tap_text(kind_label)
    page.wait.until(lambda d: d.execute_script("return window.__pdf"))
    return base64.b64decode(page.driver.execute_script("return window.__pdf"))


def test_pay_all_plans_then_certificates_and_records(page, sims, clock):
    # inside the collection window whatever day CI runs on (it closes from 17:00 on the 25th); never moved into
    # the past, where the database's TTL indexes (real time) would purge fresh SMS codes and sessions
    today = datetime.now(SHANGHAI)
    if today.day >= 25:
        today = (today.replace(day=1) + timedelta(days=40)).replace(day=10)
    clock.set(today)
    id_number, name, phone = new_id_number(), "路遥", new_phone()
    sims.enroll(id_number, name, "FE_PENSION")
    periods = months_before(today, 3)
    for period in periods:
        add_bureau_plan(sims, f"H5-{id_number}-{period}", id_number, "FE_PENSION", period, "350.00")
    sync_bureaus(sims)
    log_in(page, sims, id_number, name, phone, "FE_PENSION")

    page.tap('[data-go="#/plans"]')
    page.wait_title("个人缴费")
    page.wait.until(lambda d: len(checked(page)) == 3)
    assert checked(page) == [True, True, True]  # all selected by default
    assert page.driver.find_element(By.ID, "total").text == "¥1050.00"
    boxes = page.driver.find_elements(By.CSS_SELECTOR, "#plans input[type=checkbox]")
    boxes[1].click()  # unchecking the second unchecks every later one
    assert checked(page) == [True, False, False]
    assert page.driver.find_element(By.ID, "total").text == "¥350.00"
    boxes[0].click()
    assert checked(page) == [False, False, False]
    assert not page.driver.find_element(By.ID, "confirm").is_enabled()
    boxes[2].click()  # checking the last checks every earlier one
    assert checked(page) == [True, True, True]
    page.screenshot("plans")
    page.tap("#confirm")

    page.wait_title("缴费记录")
    page.tap('button[type="submit"]')  # 立即缴费 with the default channel (云闪付)
    page.wait_title("缴费确认")
    page.tap('button[type="submit"]')  # 确认缴费 → the channel's page
    page.wait.until(lambda d: "云闪付" in d.title)
    assert "1050.00" in page.driver.find_element(By.ID, "amount").text
    page.screenshot("channel-pay-page")
    page.driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # 确认支付
    page.wait.until(lambda d: d.find_elements(By.LINK_TEXT, "返回商户"))
    page.driver.find_element(By.LINK_TEXT, "返回商户").click()

    page.wait_title("缴费结果")
    page.wait.until(lambda d: "您已经付款1050.00元" in d.find_element(By.ID, "result-text").text)
    page.screenshot("paid")

    page.open("#/certs")
    page.wait_title("证明开具")
    paid_on = today.strftime("%Y-%m-%d")  # the services' date, which may be ahead of the browser's
    set_range(page, paid_on)
    page.tap('#range button[type="submit"]')
    page.wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#records input[type=checkbox]")) == 3)
    page.screenshot("certificates")
    for label in ("缴费证明开具", "完税证明开具"):
        pdf = download_pdf(page, label)
        assert pdf.startswith(b"%PDF")
    assert "验证码" in page.driver.find_element(By.ID, "issued").text

    page.open("#/records")
    page.wait_title("记录查询")
    page.tap('[data-q="records"]')
    page.driver.execute_script(
        f"document.querySelector('[name=period_from]').value='{periods[0]}';"
        f"document.querySelector('[name=period_to]').value='{periods[-1]}';")
    page.tap('#q button[type="submit"]')
    page.wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#out .plan")) == 3)
    text = page.driver.find_element(By.ID, "out").text
    assert all(period in text for period in periods) and "350.00" in text
    page.tap('[data-q="payments"]')
    set_range(page, paid_on)
    page.tap('#q button[type="submit"]')
    page.wait.until(lambda d: "1050.00" in d.find_element(By.ID, "out").text)
    page.screenshot("records")

    page.open("#/plans")
    page.wait.until(lambda d: "当前没有可缴费计划" in d.find_element(By.ID, "app").text)
