"""The demo data set ``make run`` loads into the bureau simulators (documented in README.md).

Payers are not pre-registered: register with one of these ID numbers and names (any phone), as a payer would.
"""
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


def bureau_for(insurance_type):
    return "medical" if insurance_type == "RR_MEDICAL" else "hr"


def load(sim_url):
    for id_number, name, insurance_type, region in DEMO_ENROLLMENTS:
        answer = requests.post(f"{sim_url}/sim/bureaus/{bureau_for(insurance_type)}/enrollments", timeout=5,
                               json={"id_number": id_number, "name": name, "insurance_type": insurance_type,
                                     "region_code": region, "enrolled_on": "2020-01-01"})
        answer.raise_for_status()
    return len(DEMO_ENROLLMENTS)
