"""What a payer does in the H5 front-end, step by step (browser tests)."""
from selenium.webdriver.common.by import By

from tests.support.payers import USED_PASSWORDS

PASSWORD = "h5pass1234"
TYPE_NAMES = {"FE_PENSION": "灵活就业养老保险", "FE_MEDICAL": "灵活就业医疗保险", "RR_PENSION": "城乡居民养老保险",
              "RR_MEDICAL": "城乡居民医疗保险"}


def wait_code_sent(page, field="sms_code"):
    page.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f'[data-code-for="{field}"]').text.endswith("秒"))


def log_in(page, sims, id_number, name, phone, insurance_type):
    """注册 then 登录 through the screens; ends on the home screen of that insurance type."""
    USED_PASSWORDS.add(PASSWORD)
    page.open("#/register")
    page.wait_title("注册")
    for field, value in (("id_number", id_number), ("name", name), ("phone", phone), ("password", PASSWORD)):
        page.fill(field, value)
    page.tap('[data-code-for="sms_code"]')
    wait_code_sent(page)
    page.fill("sms_code", sims.latest_sms_code(phone))
    page.tap('button[type="submit"]')
    page.wait_title("登录")
    for field, value in (("id_number", id_number), ("name", name), ("password", PASSWORD), ("phone", phone)):
        page.fill(field, value)
    page.driver.find_element(By.CSS_SELECTOR, f'option[value="{insurance_type}"]').click()
    page.tap('[data-code-for="sms_code"]')
    wait_code_sent(page)
    page.fill("sms_code", sims.latest_sms_code(phone))
    page.tap('button[type="submit"]')
    page.wait_title(TYPE_NAMES[insurance_type])


