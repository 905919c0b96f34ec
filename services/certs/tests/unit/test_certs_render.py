"""Real WeasyPrint renders: the CJK subset is embedded, the text extracts, long lists break cleanly.

In-process (no pool): the same ``render_pdf`` the workers run. The font subset is cut once into the user's
cache dir (~5 s the first time) and reused.
"""
import io
from datetime import datetime, timedelta, timezone

import pytest
from pypdf import PdfReader

from certs import domain, fonts, render
from certs.dependencies import default_cache_dir

UTC = timezone.utc
SETTINGS = domain.IssuerSettings(public_base_url="https://tax.example")


@pytest.fixture(scope="module")
def renderer():
    font = fonts.prepare_font(default_cache_dir())
    assert font.subset_path is not None and font.subset_path.stat().st_size > 1_000_000
    render.init_worker(font.css(), font.family_list)
    return render.render_pdf


def records(count, amount=35000):
    paid = datetime(2024, 12, 3, 2, tzinfo=UTC)
    return [{"_id": f"R{i}", "period": f"{2023 + i // 12}-{i % 12 + 1:02d}", "paid_at": paid + timedelta(minutes=i),
             "amount_fen": amount + i, "insurance_type": "FE_PENSION", "tax_ticket_no": f"3231024{i:013d}",
             "order_id": f"ORD{i:06d}", "region_code": "231002"} for i in range(count)]


def pdf_fonts(reader):
    names = set()
    for page in reader.pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            descriptor = font.get("/FontDescriptor") or font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            assert "/FontFile2" in descriptor.get_object() or "/FontFile3" in descriptor.get_object(), \
                f"{font['/BaseFont']} is not embedded"
            names.add(str(font["/BaseFont"]).split("+")[-1])
    return names


def text_of(reader):
    return "\n".join(page.extract_text() for page in reader.pages)


def test_tax_certificate_with_twelve_records_is_one_page_with_the_cjk_subset_embedded(renderer):
    rows = records(12)
    doc = domain.certificate_document("tax", rows, {"name": "张三丰", "id_number": "34052419800101001X"},
                                      "ABCD-EFGH-JKLM-NPQR-STUV", "2024120312345678",
                                      datetime(2024, 12, 4, 1, tzinfo=UTC), SETTINGS)
    reader = PdfReader(io.BytesIO(renderer(doc)))
    assert len(reader.pages) == 1
    width, height = (float(v) for v in reader.pages[0].mediabox[2:])
    assert (round(width / 72 * 25.4), round(height / 72 * 25.4)) == (210, 297)  # A4 portrait
    assert pdf_fonts(reader) == {f"{fonts.SUBSET_FAMILY}-Medium"} or \
        all(name.startswith(fonts.SUBSET_FAMILY) for name in pdf_fonts(reader))
    text = text_of(reader)
    for expected in ["中华人民共和国税收完税证明", "张三丰", "34052419800101001X", "纳税人识别号", "灵活就业养老保险",
                     "2023-01-01至2023-01-31", "2023-12-01至2023-12-31", "350.00", "350.11",
                     "3231024" + "0" * 13, doc["total"], doc["total_words"], "ABCD-EFGH-JKLM-NPQR-STUV",
                     "2024120312345678", "2024年12月04日", "国家税务总局黑龙江省税务局", "2024-12-03", "金额合计"]:
        assert expected in text, expected


def test_payment_certificate_masks_the_id_on_paper(renderer):
    doc = domain.certificate_document("payment", records(2), {"name": "李四", "id_number": "34052419800101001X"},
                                      "ABCD-EFGH-JKLM-NPQR-STUV", "N1", datetime(2024, 12, 4, 1, tzinfo=UTC),
                                      SETTINGS)
    text = text_of(PdfReader(io.BytesIO(renderer(doc))))
    assert "社会保险费缴费证明" in text and "3405**********001X" in text
    assert "34052419800101001X" not in text


def test_long_lists_break_onto_pages_repeating_the_table_header(renderer):
    doc = domain.certificate_document("tax", records(40), {"name": "王五", "id_number": "34052419800101001X"},
                                      "ABCD-EFGH-JKLM-NPQR-STUV", "N1", datetime(2024, 12, 4, 1, tzinfo=UTC),
                                      SETTINGS)
    reader = PdfReader(io.BytesIO(renderer(doc)))
    assert len(reader.pages) >= 2
    pages = [page.extract_text() for page in reader.pages]
    for page in pages:
        assert "电子税票号码" in page  # thead repeated on every page
    last_ticket = "3231024" + f"{39:013d}"
    assert last_ticket in pages[-1] and "金额合计" in pages[-1]
    assert sum(page.count("灵活就业养老保险") for page in pages) >= 40


def test_rare_characters_beyond_gb2312_fall_back_to_the_full_font(renderer):
    doc = domain.certificate_document("payment", records(1), {"name": "王䶮堃", "id_number": "34052419800101001X"},
                                      "ABCD-EFGH-JKLM-NPQR-STUV", "N1", datetime(2024, 12, 4, 1, tzinfo=UTC),
                                      SETTINGS)
    reader = PdfReader(io.BytesIO(renderer(doc)))
    names = pdf_fonts(reader)
    assert any(n.startswith(fonts.SUBSET_FAMILY) for n in names)
    assert any("WenQuanYi" in n for n in names), names  # the full font supplied the glyphs the subset lacks
    assert "王䶮堃" in text_of(reader)


def test_gb2312_character_set():
    chars = fonts.gb2312_characters()
    assert len(chars) > 7400 and "张" in chars and "鑫" in chars and "堃" not in chars


def test_qr_code_of_the_verification_url_is_on_the_page():
    import segno

    doc = domain.certificate_document("tax", records(1), {"name": "张三", "id_number": "34052419800101001X"},
                                      "ABCD-EFGH-JKLM-NPQR-STUV", "N1", datetime(2024, 12, 4, 1, tzinfo=UTC),
                                      SETTINGS)
    expected = segno.make("https://tax.example/api/v1/certificates/ABCD-EFGH-JKLM-NPQR-STUV", error="m",
                          micro=False).svg_data_uri(scale=4, border=2)
    assert render.qr_svg_data_uri(doc["verify_url"]) == expected
    assert f'src="{expected}"' in render.build_html(doc, "", "sans-serif")
