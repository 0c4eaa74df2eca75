"""The OpenAPI document and /docs: valid, complete enough for a station vendor to work from,
served without a CDN; the signing recipe's worked example and `lantian sign` agree with the
server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import time_machine
from openapi_spec_validator import validate
from sqlalchemy import update

from core import identity
from lantian.cli import cli
from lantian.openapi import EXAMPLE, SPEC_PATH, SWAGGER_UI_DIR

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "stations.md"
PUBLIC = {("post", "/api/v1/auth/token"), ("get", "/api/v1/public/blacklist"),
          ("get", "/api/v1/public/blacklist.csv")}
STATION = {"stationKey": [], "stationTimestamp": [], "stationSignature": []}
PERSON = {"bearerAuth": []}
# Computed once by hand with sha256sum and `openssl dgst -sha256 -hmac` (see docs/stations.md).
EXAMPLE_SIGNATURE = "e6aea72c854e19045ee1979402bcfd6c705e27b07b8d6d112372d28178f24b58"


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, op


def test_the_document_is_valid_openapi(client):
    spec = client.get(SPEC_PATH).get_json()
    validate(spec)  # raises on the first error
    assert spec["openapi"].startswith("3.")


def test_every_operation_has_a_summary_tags_and_says_who_may_call_it(client):
    spec = client.get(SPEC_PATH).get_json()
    ops = list(operations(spec))
    assert len(ops) >= 26
    assert [(m, p) for m, p, op in ops if not op.get("summary")] == []
    assert [(m, p) for m, p, op in ops if not op.get("tags")] == []
    assert [(m, p) for m, p, op in ops if "security" not in op] == []
    assert {(m, p) for m, p, op in ops if op["security"] == []} == PUBLIC  # public on purpose, and only these
    for method, path, op in ops:
        assert all(req in (STATION, PERSON) for req in op["security"]), (method, path, op["security"])
        assert "**Who**" in op.get("description", ""), (method, path)
        if op["security"]:
            assert {"401", "403"} <= set(op["responses"]), (method, path)
    security = {(m, p): op["security"] for m, p, op in ops}
    assert security[("post", "/api/v1/remote-sensing/events")] == [STATION]
    assert security[("post", "/api/v1/black-smoke/snapshots")] == [STATION]
    assert security[("get", "/api/v1/remote-sensing/events/{event_pk}")] == [STATION, PERSON]
    assert security[("get", "/api/v1/violations")] == [PERSON]
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert {(s["in"], s["name"]) for name, s in schemes.items() if name in STATION} == {
        ("header", "X-Station-Key"), ("header", "X-Timestamp"), ("header", "X-Signature")}


def _request_fields(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every field a client sends: request bodies (nested schemas too) and query parameters."""
    schemas = spec["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        ref = schema.get("$ref") or next((s["$ref"] for s in schema.get("allOf", []) if "$ref" in s), None)
        return (ref.rsplit("/", 1)[-1], schemas[ref.rsplit("/", 1)[-1]]) if ref else ("inline", schema)

    seen: set[str] = set()

    def walk(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        name, resolved = resolve(schema)
        if name in seen:
            return
        seen.add(name)
        for field, prop in resolved.get("properties", {}).items():
            yield f"{name}.{field}", prop
            for inner in (prop, prop.get("items", {})):
                if "$ref" in inner or "allOf" in inner:
                    yield from walk(inner)

    for _method, _path, op in operations(spec):
        for content in op.get("requestBody", {}).get("content", {}).values():
            yield from walk(content["schema"])
        for param in op.get("parameters", []):
            if param["in"] == "query":
                yield f"{_method} {_path} ?{param['name']}", {**param.get("schema", {}), **param}


def test_every_request_field_has_a_description_and_an_example(client):
    fields = list(_request_fields(client.get(SPEC_PATH).get_json()))
    assert len(fields) >= 110
    undescribed = [name for name, prop in fields if not prop.get("description")]
    # File parts are bytes: an example of one means nothing.
    files = {name for name, prop in fields if prop.get("items", {}).get("format") == "binary"}
    without_example = [name for name, prop in fields if "example" not in prop and name not in files]
    assert undescribed == [] and without_example == []
    assert files == {"SnapshotUploadDoc.images"}


def test_the_worked_example_is_what_the_server_verifies(app, client, station):
    assert EXAMPLE.signature == EXAMPLE_SIGNATURE
    rt = app.extensions["lantian"]
    with rt.sessions() as session, session.begin():
        session.execute(update(identity.Station).values(key_id=EXAMPLE.key_id,
                                                        secret=rt.station_box.seal(EXAMPLE.secret)))
    headers = {"X-Station-Key": EXAMPLE.key_id, "X-Timestamp": EXAMPLE.timestamp, "X-Signature": EXAMPLE_SIGNATURE}
    with time_machine.travel(int(EXAMPLE.timestamp), tick=False):
        r = client.post(EXAMPLE.path, data=EXAMPLE.body.encode(), headers=headers, content_type="application/json")
    assert r.status_code == 202, r.get_json()


def test_the_station_guide_and_the_document_show_the_same_example(client):
    guide = GUIDE.read_text(encoding="utf-8")
    for text in (f"`{EXAMPLE.key_id}`", f"`{EXAMPLE.secret}`", f"`{EXAMPLE.timestamp}`", EXAMPLE.body,
                 f"{len(EXAMPLE.body.encode())} bytes", f"`{EXAMPLE.body_sha256}`", EXAMPLE.string_to_sign,
                 f"X-Signature: {EXAMPLE_SIGNATURE}", f"-hmac '{EXAMPLE.secret}'"):
        assert text in guide, text
    description = client.get(SPEC_PATH).get_json()["info"]["description"]
    for text in (EXAMPLE.secret, EXAMPLE.body, EXAMPLE.body_sha256, EXAMPLE_SIGNATURE, "docs/stations.md"):
        assert text in description, text


def _sign(runner: Any, *args: str, input: str | bytes | None = None) -> Any:
    return runner.invoke(cli, ["sign", *args], input=input)


def _headers(output: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in output.strip().splitlines())


def test_lantian_sign_prints_headers_the_server_accepts(runner, client, station, tmp_path):
    body = '{"event_id": "RS001-signed", "measured_at": "2026-11-22T08:15:30+08:00", "lane": 1, ' \
           '"plate": {"number": "苏B12345", "color": "yellow", "confidence": 0.97}, "speed_kmh": 42.5, ' \
           '"acceleration_ms2": 0.3, "measurements": {"no_ppm": 820}}'
    from_stdin = _sign(runner, "--key-id", station.key_id, "--secret-stdin", "--method", "POST",
                       "--path", "/api/v1/remote-sensing/events", input=f"{station.secret}\n{body}".encode())
    assert from_stdin.exit_code == 0, from_stdin.output
    headers = _headers(from_stdin.output)
    assert set(headers) == {"X-Station-Key", "X-Timestamp", "X-Signature"}
    r = client.post("/api/v1/remote-sensing/events", data=body.encode(), headers=headers,
                    content_type="application/json")
    assert r.status_code == 202, r.get_json()
    # A GET signs the empty body; the server reads the event back with those headers.
    path = f"/api/v1/remote-sensing/events/{r.get_json()['id']}"
    get = _sign(runner, "--key-id", station.key_id, "--secret", station.secret, "--method", "GET", "--path", path,
                input=b"")
    assert client.get(path, headers=_headers(get.output)).status_code == 200


def test_lantian_sign_reproduces_the_worked_example(runner, tmp_path):
    body_file = tmp_path / "body.json"
    body_file.write_bytes(EXAMPLE.body.encode())
    result = _sign(runner, "--key-id", EXAMPLE.key_id, "--secret", EXAMPLE.secret, "--method", "post",
                   "--path", EXAMPLE.path, "--body-file", str(body_file), "--timestamp", EXAMPLE.timestamp)
    assert _headers(result.output) == {"X-Station-Key": EXAMPLE.key_id, "X-Timestamp": EXAMPLE.timestamp,
                                       "X-Signature": EXAMPLE_SIGNATURE}


def test_lantian_sign_takes_exactly_one_secret(runner):
    common = ["--key-id", "k", "--method", "GET", "--path", "/x"]
    assert _sign(runner, *common, input=b"").exit_code == 2
    assert _sign(runner, *common, "--secret", "s", "--secret-stdin", input=b"s\n").exit_code == 2


def test_docs_page_is_swagger_ui_served_by_lantian_itself(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/docs/swagger-ui/swagger-ui-bundle.js" in assets and "/docs/static/api_docs.js" in assets
    assert [a for a in assets if not a.startswith("/")] == []  # nothing from another host
    assert "<script>" not in html  # no inline script: a strict Content-Security-Policy still runs it
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200 and response.data, asset
    bundle = client.get("/docs/swagger-ui/swagger-ui-bundle.js").data
    assert bundle == (Path(SWAGGER_UI_DIR) / "swagger-ui-bundle.js").read_bytes()
    assert client.get("/docs/swagger-ui/../../__init__.py").status_code == 404
    # Without JavaScript the page still lists the operations.
    assert "/api/v1/remote-sensing/events" in html and "Send one remote-sensing event." in html
