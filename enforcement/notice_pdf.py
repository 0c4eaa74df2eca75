"""The notice laid out as a PDF (fpdf2) in a CJK TrueType font installed with the system
(Debian's fonts-wqy-microhei by default, settings.notice_font)."""

from __future__ import annotations

import os

from fpdf import FPDF
from fpdf.enums import WrapMode

from core.errors import ApiError
from enforcement.notice_docs import NoticeContent

FAMILY = "notice"


class FontMissing(ApiError):
    status = 503
    code = "notice_font_missing"


def render(content: NoticeContent, font_path: str) -> bytes:
    if not os.path.isfile(font_path):
        raise FontMissing(f"the CJK font for notices is not installed at {font_path} "
                          "(install fonts-wqy-microhei or set LANTIAN_NOTICE_FONT)")
    pdf = FPDF(format="A4")
    pdf.set_title(content.title)
    pdf.add_font(FAMILY, fname=font_path)
    pdf.set_margins(18, 18, 18)
    pdf.add_page()
    width = pdf.epw

    def line(text: str, size: float = 11, height: float = 6.5, align: str = "L") -> None:
        pdf.set_font(FAMILY, size=size)
        pdf.multi_cell(width, height, text, align=align, new_x="LMARGIN", new_y="NEXT", wrapmode=WrapMode.CHAR)

    line(content.title, size=18, height=11, align="C")
    line(f"编号: {content.number}", size=10, align="R")
    pdf.ln(3)
    line(f"车辆号牌: {content.plate}", size=12)
    line("经监测，你单位（人）的上述车辆存在下列排放超标情形:")
    for n, item in enumerate(content.findings, 1):
        line(f"{n}. {item.source}  {item.detected_at}  {item.place}", size=11)
        for value in item.values:
            line(f"      {value}", size=10, height=5.5)
    pdf.ln(2)
    line(f"依据: {content.legal_basis}")
    line(f"请于 {content.deadline_on} 前（{content.deadline_days} 日内）到具备资质的机动车排放维修站（M站）"
         "完成维修，并到机动车排放检验机构（I站）复检合格。逾期未改正的，将依法处理。")
    pdf.ln(2)
    line("可前往的维修站:")
    for station in content.repair_stations or ["（本地区暂无登记的维修站，请咨询生态环境部门）"]:
        line(f"    {station}", size=10, height=5.5)
    pdf.ln(8)
    line(f"签发日期: {content.issued_on}", align="R")
    line("生态环境主管部门（盖章）", align="R")
    return bytes(pdf.output())
