"""The demo data set ``make run`` loads into the bureau simulators (documented in README.md).

Payers are not pre-registered: register with one of these ID numbers and names (any phone), as a payer would.
"""
from datetime import date

import requests

DEMO_ENROLLMENTS = [
    # id_number, name, insurance_type, region_code (bureau chosen by type)
    ("34052419800101001X", "张三", "FE_PENSION", "230102"),
    ("34052419800101001X", "张三", "FE_MEDICAL", "230102"),
    ("11010519491231002X", "李四", "RR_PENSION", "230103"),
    ("11010519491231002X", "李四", "RR_MEDICAL", "230103"),
    ("230102199001011230", "王五", "FE_PENSION", "230102"),
    ("230102199001011230", "王五", "FE_MEDICAL", "230102"),
    ("230102199001011230", "王五", "RR_PENSION", "230102"),
    ("230102199001011230", "王五", "RR_MEDICAL", "230102"),
    ("231002198503120016", "赵丽", "FE_PENSION", "231002"),  # 牡丹江 东安区: 缴费申报 / 申报作废
]


# The bureaus' 缴费计划 (amounts as the bureau decided them): the three months before the current one for the
# monthly types, the coming year for the annual ones. 赵丽 (牡丹江) has none: she declares (缴费申报) herself.
MONTHLY_PLANS = [("34052419800101001X", "FE_PENSION", "350.00"), ("34052419800101001X", "FE_MEDICAL", "120.00"),
                 ("230102199001011230", "FE_PENSION", "350.00")]
ANNUAL_PLANS = [("11010519491231002X", "RR_PENSION", "500.00"), ("11010519491231002X", "RR_MEDICAL", "380.00"),
                ("230102199001011230", "RR_MEDICAL", "380.00")]


def demo_plans(today):
    plans = []
    for id_number, insurance_type, amount in MONTHLY_PLANS:
        for back in (3, 2, 1):
            year, month = divmod(today.year * 12 + today.month - 1 - back, 12)
            period = f"{year}-{month + 1:02d}"
            plans.append({"plan_id": f"DEMO-{id_number[-6:]}-{insurance_type}-{period}", "id_number": id_number,
                          "insurance_type": insurance_type, "period": period, "amount": amount})
    for id_number, insurance_type, amount in ANNUAL_PLANS:
        period = f"{today.year + 1}-01"
        plans.append({"plan_id": f"DEMO-{id_number[-6:]}-{insurance_type}-{period}", "id_number": id_number,
                      "insurance_type": insurance_type, "period": period, "amount": amount,
                      "deadline": f"{today.year}-12-31T17:00:00+08:00"})
    return plans


def bureau_for(insurance_type):
    return "medical" if insurance_type == "RR_MEDICAL" else "hr"


def load(sim_url):
    for id_number, name, insurance_type, region in DEMO_ENROLLMENTS:
        answer = requests.post(f"{sim_url}/sim/bureaus/{bureau_for(insurance_type)}/enrollments", timeout=5,
                               json={"id_number": id_number, "name": name, "insurance_type": insurance_type,
                                     "region_code": region, "enrolled_on": "2020-01-01"})
        answer.raise_for_status()
    plans = demo_plans(date.today())
    for plan in plans:
        requests.post(f"{sim_url}/sim/bureaus/{bureau_for(plan['insurance_type'])}/plans", json=plan,
                      timeout=5).raise_for_status()
    # Apply it now (the plans service would on its own timer too), so the demo payers can register at once.
    requests.post(f"{sim_url}/sim/bureaus/sync", timeout=130).raise_for_status()
    return len(DEMO_ENROLLMENTS), len(plans)
