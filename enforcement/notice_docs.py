"""The mandatory inspection and repair notice (强制检验维修通知书) as plain data.

A pure presenter: the notice's content from what is stored, with local times; the PDF
renderer (enforcement.notice_pdf) only lays it out, so the content is tested without a PDF.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import regions
from core.errors import NotFound
from core.identity import Org
from core.registry import Vehicle
from core.settings import Policy
from enforcement import evidence
from enforcement.models import ACTIVE, Case, Notice, Violation

TITLE = "机动车排放超标强制检验维修通知书"
COLORS = {"blue": "蓝", "yellow": "黄", "green": "绿", "yellow_green": "黄绿", "white": "白", "black": "黑"}
SOURCES = {"remote_sensing": "遥感监测", "black_smoke": "黑烟抓拍", "road_check": "路检", "depot_check": "入户抽测"}
POLLUTANTS = {"co_pct": "一氧化碳 CO (%)", "hc_ppm": "碳氢化合物 HC (ppm)", "no_ppm": "一氧化氮 NO (ppm)",
              "opacity_pct": "不透光度 (%)", "ringelmann": "林格曼黑度 (级)", "co2_pct": "二氧化碳 CO2 (%)"}


@dataclass(frozen=True)
class Finding:
    """One violation as the notice states it."""

    source: str
    detected_at: str
    place: str
    values: list[str]  # "一氧化氮 NO (ppm): 1850 (限值 1500)"


@dataclass(frozen=True)
class NoticeContent:
    title: str
    number: str
    plate: str
    issued_on: str
    deadline_on: str
    deadline_days: int
    findings: list[Finding]
    legal_basis: str
    repair_stations: list[str]


def _local(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _place(station: dict[str, Any] | None) -> str:
    if not station:
        return ""
    parts = [station.get("name") or station.get("code"), station.get("location")]
    return " ".join(p for p in parts if p)


def finding(violation: Violation, found: dict[str, Any], tz: ZoneInfo) -> Finding:
    """The measured values against their limits, where and when (for a run: its last event)."""
    values: list[str] = []
    place = ""
    if violation.source == "remote_sensing":
        events = found.get("events") or []
        for ev in events:
            limits = ev.get("limits") or {}
            for key in ev.get("exceeded") or []:
                shown = f"{POLLUTANTS.get(key, key)}: {ev['measurements'].get(key)} (限值 {limits.get(key)})"
                values.append(f"{_local(ev['measured_at'], tz)} {shown}")
        place = _place(events[-1]["station"]) if events else ""
    elif violation.source == "black_smoke" and "snapshot" in found:
        values.append(f"林格曼黑度 {found['review']['ringelmann']} 级 (人工审核确认)")
        place = _place(found["snapshot"]["station"])
    elif "test" in found:
        test = found["test"]
        values += [f"{k}: {v}" for k, v in sorted(test["results"].items())] + ["检测结论: 不合格"]
        place = test.get("location") or ""
    return Finding(SOURCES.get(violation.source, violation.source), _local(violation.detected_at, tz), place, values)


def repair_stations(session: Session, region: str | None) -> list[str]:
    """The M stations of the case's region (and its children)."""
    query = select(Org).where(Org.kind == "repair_station").order_by(Org.code)
    return [f"{o.name} ({o.code})" for o in session.scalars(query) if regions.contains(region, o.region)]


def notice_content(session: Session, case: Case, *, tz: ZoneInfo, policy: Policy) -> NoticeContent:
    """The latest notice of the case, or 404 `no_notice` when none was issued."""
    notice = session.scalars(select(Notice).where(Notice.case_id == case.id)
                             .order_by(Notice.created_at.desc(), Notice.id.desc()).limit(1)).first()
    if notice is None:
        raise NotFound("no notice was issued on this case", code="no_notice")
    vehicle = session.get_one(Vehicle, case.vehicle_id)
    violations: Sequence[Violation] = session.scalars(select(Violation).where(
        Violation.case_id == case.id, Violation.status == ACTIVE).order_by(Violation.detected_at)).all()
    found = evidence.evidence_of(session, ((v.id, v.source, v.source_ref, v.details) for v in violations))
    return NoticeContent(
        title=TITLE, number=f"{case.id}-{notice.id}",
        plate=f"{vehicle.plate} ({COLORS.get(vehicle.plate_color, vehicle.plate_color)}牌)",
        issued_on=notice.issued_on.isoformat(), deadline_on=notice.deadline_on.isoformat(),
        deadline_days=notice.deadline_days, findings=[finding(v, found.get(v.id, {}), tz) for v in violations],
        legal_basis=policy.notice_legal_basis, repair_stations=repair_stations(session, case.region),
    )
