"""Registry upserts, people's tokens and vehicle reads."""

from __future__ import annotations

import pytest

from tests.factories import FLEET_CODE, vehicle

FLEETS = "/api/v1/registry/fleets"
VEHICLES = "/api/v1/registry/vehicles"


def test_token_for_right_password_only(client, login):
    login("police", "320200", username="p1")
    bad = client.post("/api/v1/auth/token", json={"username": "p1", "password": "wrong"})
    assert bad.status_code == 401 and bad.get_json()["error"]["code"] == "invalid_credentials"
    nobody = client.post("/api/v1/auth/token", json={"username": "nobody", "password": "x"})
    assert nobody.status_code == 401
    assert client.post("/api/v1/auth/token", json={"username": "p1"}).status_code == 422


def test_token_shape(client, runner):
    from tests.conftest import cli_json

    cli_json(runner, "users", "create", "--username", "u", "--password", "pw", "--role", "admin")
    body = client.post("/api/v1/auth/token", json={"username": "u", "password": "pw"}).get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0 and body["access_token"]


def test_bad_or_missing_token_401(client):
    assert client.get("/api/v1/vehicles/苏B12345").status_code == 401
    r = client.get("/api/v1/vehicles/苏B12345", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "invalid_token"


def test_upsert_fleets_and_vehicles(client, login):
    admin = login("transport")
    r = client.put(FLEETS, json={"fleets": [{"code": FLEET_CODE, "name": "锡运物流", "region": "320200"}]},
                   headers=admin)
    assert r.status_code == 200 and r.get_json() == {"created": 1, "updated": 0}
    batch = [vehicle(), vehicle("苏B12346", fleet_code=FLEET_CODE)]
    assert client.put(VEHICLES, json={"vehicles": batch}, headers=admin).get_json() == {"created": 2, "updated": 0}
    again = client.put(VEHICLES, json={"vehicles": batch}, headers=admin).get_json()
    assert again == {"created": 0, "updated": 2}
    police = login("police", "320200")
    got = client.get("/api/v1/vehicles/苏B12346?plate_color=yellow", headers=police).get_json()
    assert got["vehicle"]["fleet_code"] == FLEET_CODE
    assert got["vehicle"]["registered"] is True
    assert got["vehicle"]["inspection_cycle"] == {"last_on": "2026-03-10", "next_due_on": "2027-03-10"}
    assert got["open_case"] is None and got["blacklisted"] is False


def test_5000_vehicles_in_one_call(client, login):
    admin = login("admin")
    batch = [vehicle(f"苏B{i:05d}") for i in range(5000)]
    r = client.put(VEHICLES, json={"vehicles": batch}, headers=admin)
    assert r.status_code == 200 and r.get_json()["created"] == 5000
    assert client.put(VEHICLES, json={"vehicles": batch + [vehicle("苏C00001")]}, headers=admin).status_code == 422


@pytest.mark.parametrize("field, value", [
    ("plate", "ABC123"), ("plate", "苏B1234I"), ("plate_color", "pink"), ("fuel_type", "coal"),
    ("emission_standard", 7), ("use_nature", "private"), ("region", "3202"), ("vin", "LZZ1CLVB8KA12345O"),
    ("fleet_code", "91320200MA1XXXXXX1"), ("registered_on", "2019-13-01"),
    ("inspection_cycle", {"last_on": "2027-03-10", "next_due_on": "2026-03-10"}),
])
def test_bad_vehicle_422_and_nothing_stored(client, login, field, value):
    admin = login("admin")
    r = client.put(VEHICLES, json={"vehicles": [vehicle("苏B99999"), vehicle(**{field: value})]}, headers=admin)
    assert r.status_code == 422
    assert "vehicles" in r.get_json()["error"]["fields"]
    assert client.get("/api/v1/vehicles/苏B99999", headers=admin).status_code == 404


def test_unknown_fleet_code_422(client, login):
    admin = login("admin")
    r = client.put(VEHICLES, json={"vehicles": [vehicle(fleet_code=FLEET_CODE)]}, headers=admin)
    assert r.status_code == 422


def test_registry_roles(client, login):
    body = {"fleets": [{"code": FLEET_CODE, "name": "x", "region": "320200"}]}
    for role, status in [("police", 403), ("env_officer", 403), ("transport", 200), ("admin", 200)]:
        assert client.put(FLEETS, json=body, headers=login(role)).status_code == status


def test_region_scoping_on_vehicle_reads(client, login):
    admin = login("admin")
    client.put(VEHICLES, json={"vehicles": [vehicle(region="320281")]}, headers=admin)
    assert client.get("/api/v1/vehicles/苏B12345", headers=login("police", "320200")).status_code == 200
    assert client.get("/api/v1/vehicles/苏B12345", headers=login("police", "320281")).status_code == 200
    assert client.get("/api/v1/vehicles/苏B12345", headers=login("police", "320500")).status_code == 404


def test_plate_query_is_cleaned(client, login):
    admin = login("admin")
    client.put(VEHICLES, json={"vehicles": [vehicle()]}, headers=admin)
    assert client.get("/api/v1/vehicles/苏b 12345", headers=admin).status_code == 200
