"""The H5 front-end in headless Chromium against the real stack: 险种选择 → 注册 → 登录 → 首页, and errors."""
from selenium.webdriver.common.by import By

from tests.support.h5 import PASSWORD, wait_code_sent
from tests.support.payers import USED_PASSWORDS
from tests.support.people import new_id_number, new_phone

USED_PASSWORDS.add(PASSWORD)


def register_through_ui(page, sims, id_number, name, phone):
    page.open("#/register")
    page.wait_title("注册")
    page.fill("id_number", id_number.lower())
    page.fill("name", name)
    page.fill("phone", phone)
    page.fill("password", PASSWORD)
    page.tap('[data-code-for="sms_code"]')
    wait_code_sent(page)
    page.fill("sms_code", sims.latest_sms_code(phone))
    page.screenshot("register")
    page.tap('button[type="submit"]')
    page.wait_title("登录")


def test_choose_type_register_and_log_in(page, sims):
    id_number, name, phone = new_id_number(), "田甜", new_phone()
    sims.enroll(id_number, name, "RR_PENSION")
    page.screenshot("insurance-types")
    assert page.title() == "险种选择"
    assert len(page.driver.find_elements(By.CSS_SELECTOR, "[data-type]")) == 4
    page.tap('[data-type="RR_PENSION"]')
    page.wait_title("登录")
    register_through_ui(page, sims, id_number, name, phone)
    assert "注册成功" in page.driver.find_element(By.CSS_SELECTOR, ".notice").text
    assert page.driver.find_element(By.NAME, "insurance_type").get_attribute("value") == "RR_PENSION"

    page.fill("id_number", id_number)
    page.fill("name", name)
    page.fill("password", PASSWORD)
    page.fill("phone", phone)
    page.tap('[data-code-for="sms_code"]')
    wait_code_sent(page)
    page.fill("sms_code", sims.latest_sms_code(phone))
    page.tap('button[type="submit"]')
    page.wait_title("城乡居民养老保险")
    page.screenshot("home")
    tiles = page.driver.find_element(By.ID, "tiles").text
    assert all(word in tiles for word in ("个人缴费", "证明开具", "记录查询"))

    page.driver.refresh()  # a refresh keeps the session screen
    page.wait_title("城乡居民养老保险")
    page.tap("#logout")
    page.wait_title("险种选择")


def test_wrong_code_and_bad_id_are_shown_next_to_their_fields(page, sims):
    id_number, name, phone = new_id_number(), "白雪", new_phone()
    sims.enroll(id_number, name, "FE_MEDICAL")
    page.open("#/register")
    page.wait_title("注册")
    page.fill("id_number", id_number[:-1] + ("1" if id_number[-1] != "1" else "2"))
    page.fill("name", name)
    page.fill("phone", phone)
    page.fill("password", PASSWORD)
    page.fill("sms_code", "123456")
    page.tap('button[type="submit"]')
    page.wait_error("id_number", "身份证号码不正确")

    page.fill("id_number", id_number)
    page.tap('[data-code-for="sms_code"]')
    wait_code_sent(page)
    wrong = f"{(int(sims.latest_sms_code(phone)) + 1) % 1_000_000:06d}"
    page.fill("sms_code", wrong)
    page.tap('button[type="submit"]')
    page.wait_error("sms_code", "验证码错误")
    page.screenshot("wrong-code")
    assert page.error_for("id_number") == ""
