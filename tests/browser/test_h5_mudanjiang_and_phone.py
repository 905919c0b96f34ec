"""牡丹江 缴费申报 / 申报作废 and 修改手机号 in the phone browser, against the real stack."""
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.support.h5 import log_in, wait_code_sent
from tests.support.people import new_id_number, new_phone


def test_mudanjiang_payer_declares_then_voids(page, sims):
    id_number, name, phone = new_id_number(region="231002"), "牡丹", new_phone()
    sims.enroll(id_number, name, "FE_PENSION", region_code="231002", enrolled_on="2020-01-01")
    log_in(page, sims, id_number, name, phone, "FE_PENSION")
    page.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-go="#/declare"]'))  # 牡丹江 only

    page.tap('[data-go="#/declare"]')
    page.wait_title("缴费申报")
    Select(page.driver.find_element(By.NAME, "grade")).select_by_index(0)
    boxes = page.driver.find_elements(By.CSS_SELECTOR, "#periods input[type=checkbox]")
    boxes[1].click()  # checking the second period checks the first too: no gaps
    assert [b.is_selected() for b in boxes[:3]] == [True, True, False]
    page.screenshot("declare")
    page.tap('button[type="submit"]')
    page.wait.until(lambda d: "申报已提交" in d.find_element(By.ID, "app").text)

    page.tap('[data-go="#/plans"]')
    page.wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#plans input[type=checkbox]")) == 2)

    page.open("#/declarations")
    page.wait_title("申报作废")
    page.tap("[data-void]")
    page.wait.until(lambda d: "voided" in d.find_element(By.ID, "list").text)
    page.open("#/plans")
    page.wait.until(lambda d: "当前没有可缴费计划" in d.find_element(By.ID, "app").text)


def test_phone_change_needs_codes_to_both_phones(page, sims, clock):
    id_number, name, phone = new_id_number(), "换机", new_phone()
    sims.enroll(id_number, name, "FE_PENSION", enrolled_on="2020-01-01")
    log_in(page, sims, id_number, name, phone, "FE_PENSION")
    new = new_phone()
    page.tap('[data-go="#/phone"]')
    page.wait_title("修改手机号")
    page.fill("old_phone", phone)
    page.tap('[data-code-for="old_phone_code"]')
    wait_code_sent(page, "old_phone_code")
    page.fill("old_phone_code", sims.latest_sms_code(phone))
    page.fill("new_phone", new)
    page.tap('[data-code-for="new_phone_code"]')
    wait_code_sent(page, "new_phone_code")
    page.fill("new_phone_code", "000000" if sims.latest_sms_code(new) != "000000" else "111111")
    page.tap('button[type="submit"]')
    page.wait_error("new_phone_code", "验证码")  # named at the code that was wrong; nothing changed
    assert page.error_for("old_phone_code") == ""
    page.fill("new_phone_code", sims.latest_sms_code(new))
    page.tap('button[type="submit"]')
    page.wait.until(lambda d: "手机号码已修改" in d.find_element(By.ID, "app").text)
