"""HTML → PDF for 缴费证明 and 完税证明 (WeasyPrint). Runs in worker processes: plain data in, bytes out.

Nothing here talks to Nameko, MongoDB or the network; ``render_pdf`` is a pure function of the document dict
(``domain.certificate_document``) and the prepared font.
"""
from html import escape

import segno

CSS = """
@page {
  size: A4; margin: 16mm 14mm 18mm 14mm;
  @bottom-center { content: "验证码 __CODE__    第 " counter(page) " 页 / 共 " counter(pages) " 页";
                   font-size: 8pt; color: #555; width: 100%; }
}
/* one weight only: every extra weight is another embedded copy of the CJK font to subset per render */
html { font-family: __FAMILIES__; font-size: 10pt; color: #111; }
h1, th, strong { font-weight: normal; }
h1 { text-align: center; font-size: 17pt; letter-spacing: 2pt; margin: 0 0 2mm; }
.sub { text-align: center; font-size: 9pt; margin: 0 0 4mm; }
table { width: 100%; border-collapse: collapse; }
.meta td { padding: 1.2mm 1.5mm; border: 0.6pt solid #333; }
.meta th { padding: 1.2mm 1.5mm; border: 0.6pt solid #333; background: #f1f1f1; font-weight: normal; width: 22mm;
           text-align: left; }
.rows { margin-top: 3mm; }
.rows thead { display: table-header-group; }
.rows { table-layout: fixed; }
.rows th { border: 0.6pt solid #333; background: #f1f1f1; padding: 1.2mm 0.6mm; font-size: 8pt; }
.rows td { border: 0.6pt solid #333; padding: 1.4mm 0.6mm; font-size: 7.5pt; text-align: center;
           overflow-wrap: anywhere; }
.rows td.num { text-align: right; padding-right: 1.5mm; white-space: nowrap; }
.rows td.nw { white-space: nowrap; }
.rows tr { break-inside: avoid; }
.total td { font-size: 9.5pt; }
.total .words { text-align: left; padding-left: 2mm; }
.foot { margin-top: 5mm; break-inside: avoid; display: flex; }
.foot .text { flex: 1; font-size: 9pt; line-height: 1.6; }
.foot .qr { width: 30mm; text-align: center; font-size: 7.5pt; }
.foot .qr img { width: 28mm; height: 28mm; }
.code { font-size: 10pt; letter-spacing: 0.5pt; }
.stamp { margin-top: 3mm; text-align: right; font-size: 10pt; }
"""


TAX_COLUMNS = "".join(f'<col style="width:{w}mm">' for w in (8, 20, 38, 16, 24, 39, 19, 18))
PAYMENT_COLUMNS = "".join(f'<col style="width:{w}mm">' for w in (10, 40, 32, 44, 26, 30))


def qr_svg_data_uri(url: str) -> str:
    """QR code for the verification URL, medium error correction (survives a photocopy), as an SVG data URI."""
    return segno.make(url, error="m", micro=False).svg_data_uri(scale=4, border=2)


def build_html(doc: dict, font_css: str, families: str) -> str:
    e = escape
    is_tax = doc["kind"] == "tax"
    meta = (
        f'<table class="meta">'
        f'<tr><th>{e(doc["id_label"])}</th><td>{e(doc["id_number"])}</td>'
        f'<th>{"纳税人名称" if is_tax else "缴费人姓名"}</th><td>{e(doc["payer_name"])}</td></tr>'
        f'<tr><th>税务机关</th><td>{e(doc["authority"])}</td>'
        f'<th>填发日期</th><td>{e(doc["issue_date"])}</td></tr>'
        f'<tr><th>品目名称</th><td>{e(doc["insurance_name"])}</td>'
        f'<th>税种</th><td>{e(doc["tax_category"])}</td></tr>'
        f'</table>'
    )
    columns_html = f"<colgroup>{TAX_COLUMNS if is_tax else PAYMENT_COLUMNS}</colgroup>"
    head = ("<tr><th>序号</th><th>原凭证号</th><th>电子税票号码</th><th>税种</th><th>品目名称</th>"
            "<th>税款所属时期</th><th>入(退)库日期</th><th>实缴(退)金额</th></tr>") if is_tax else \
           ("<tr><th>序号</th><th>电子税票号码</th><th>险种</th><th>费款所属期</th>"
            "<th>入库日期</th><th>缴费金额(元)</th></tr>")
    body = []
    for number, row in enumerate(doc["rows"], 1):
        if is_tax:
            body.append(f'<tr><td>{number}</td><td>{e(row["order_id"])}</td><td>{e(row["ticket_no"])}</td>'
                        f'<td>{e(doc["tax_category"])}</td><td>{e(doc["insurance_name"])}</td>'
                        f'<td class="nw">{e(row["period"])}</td><td class="nw">{e(row["paid_date"])}</td>'
                        f'<td class="num">{e(row["amount"])}</td></tr>')
        else:
            body.append(f'<tr><td>{number}</td><td>{e(row["ticket_no"])}</td><td>{e(doc["insurance_name"])}</td>'
                        f'<td class="nw">{e(row["period"])}</td><td class="nw">{e(row["paid_date"])}</td>'
                        f'<td class="num">{e(row["amount"])}</td></tr>')
    columns = 8 if is_tax else 6
    total = (f'<tr class="total"><td colspan="2">金额合计</td>'
             f'<td class="words" colspan="{columns - 3}">（大写）{e(doc["total_words"])}</td>'
             f'<td class="num">￥{e(doc["total"])}</td></tr>')
    note = ("本证明依据税务机关征收入库信息开具，用于证明纳税人已缴纳相关税费，不作纳税人记账、抵扣凭证。"
            if is_tax else "本证明依据税务机关征收入库信息开具，证明缴费人已缴纳上列社会保险费。")
    foot = (
        f'<div class="foot"><div class="text">'
        f'<div>{note}</div>'
        f'<div>扫描右侧二维码或访问以下地址核验本证明真伪：</div>'
        f'<div class="code">{e(doc["verify_url"])}</div>'
        f'<div>验证码：<span class="code">{e(doc["code"])}</span></div>'
        f'<div class="stamp">{e(doc["authority"])}（电子）</div>'
        f'</div><div class="qr"><img src="{qr_svg_data_uri(doc["verify_url"])}" alt="QR">'
        f'<div>扫码核验</div></div></div>'
    )
    css = CSS.replace("__FAMILIES__", families).replace("__CODE__", doc["code"])
    return (
        f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{e(doc["title"])}</title>'
        f'<style>{font_css}\n{css}</style></head><body>'
        f'<h1>{e(doc["title"])}</h1>'
        f'<div class="sub">No. {e(doc["certificate_no"])}</div>'
        f'{meta}'
        f'<table class="rows">{columns_html}<thead>{head}</thead><tbody>{"".join(body)}{total}</tbody></table>'
        f'{foot}</body></html>'
    )


# ---- one renderer per worker process ---------------------------------------------------------------
_state = {}


def init_worker(font_css: str, families: str):
    """Process-pool initializer: import WeasyPrint once and keep one FontConfiguration per process."""
    from weasyprint.text.fonts import FontConfiguration

    _state.update(font_css=font_css, families=families, font_config=FontConfiguration())


def render_pdf(doc: dict) -> bytes:
    from weasyprint import HTML

    html = build_html(doc, _state["font_css"], _state["families"])
    return HTML(string=html).write_pdf(font_config=_state["font_config"])


def warm_up() -> int:
    """One throw-away render in a fresh worker: imports WeasyPrint and loads the font before real work."""
    sample = {"kind": "tax", "title": "完税证明", "certificate_no": "0", "issue_date": "2000年01月01日",
              "authority": "税务局", "payer_name": "张三", "id_label": "纳税人识别号", "id_number": "0",
              "insurance_type": "FE_PENSION", "insurance_name": "养老保险", "tax_category": "社会保险费",
              "rows": [{"ticket_no": "0", "order_id": "0", "period": "2000-01", "paid_date": "2000-01-01",
                        "amount": "1.00"}],
              "total": "1.00", "total_words": "壹元整", "code": "WARM", "verify_url": "http://localhost/"}
    return len(render_pdf(sample))
