"""The public disclosure dates each entry by the local calendar day it was listed on
(settings.timezone, Asia/Shanghai here), not by the UTC date."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from core import plates
from core.registry import Vehicle
from enforcement.models import Listing


@pytest.mark.parametrize("listed_at, listed_on", [
    (datetime(2026, 11, 20, 23, 30, tzinfo=UTC), "2026-11-21"),  # 07:30 the next morning in Shanghai
    (datetime(2026, 11, 20, 15, 59, 59, tzinfo=UTC), "2026-11-20"),  # 23:59:59 local
    (datetime(2026, 11, 20, 16, 0, tzinfo=UTC), "2026-11-21"),  # local midnight
])
def test_listed_on_is_the_local_day(app, client, listed_at, listed_on):
    with app.extensions["lantian"].sessions() as s:
        truck = Vehicle(plate="苏B12345", plate_color="yellow", plate_key=plates.confusion_key("苏B12345"),
                        region="320200", fuel_type="diesel")
        s.add(truck)
        s.flush()
        s.add(Listing(list_kind="blacklist", subject_type="vehicle", subject_id=truck.id, rule="three_strikes",
                      region="320200", period_start=datetime(2026, 3, 10).date(), listed_at=listed_at, evidence=[]))
        s.commit()
    (item,) = client.get("/api/v1/public/blacklist").get_json()["items"]
    assert item["listed_on"] == listed_on
    rows = list(csv.reader(io.StringIO(client.get("/api/v1/public/blacklist.csv").get_data(as_text=True))))
    assert rows[1][-1] == listed_on
