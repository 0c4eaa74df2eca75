"""Generated requests against our own OpenAPI document, sent over a socket to a live server
(werkzeug's, in a thread, on a loopback port) with every role's token: never a 500, and every
error in the API's shape."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.serving import make_server

from tests.conftest import cli_json

ROLES = ("admin", "env_officer", "police", "transport", "repair_station", "inspection_station")


@pytest.fixture()
def live(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_no_server_error_and_error_shape_for_every_role(live, login, runner):
    for kind in ("repair_station", "inspection_station"):
        cli_json(runner, "orgs", "create", "--code", kind, "--kind", kind, "--name", "N", "--region", "320200")
    tokens = {role: login(role, region="320200", org=role if role.endswith("_station") else None) for role in ROLES}
    schema = schemathesis.openapi.from_url(f"{live}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10

    def check(case: schemathesis.Case, role: str) -> None:
        response = case.call(base_url=live, headers=tokens[role], timeout=30)
        assert response.status_code < 500, (role, case.method, case.path, response.text[:500])
        if response.status_code >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
            body = response.json()
            assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body

    for operation in operations:
        # Each example goes out with one role's token, the roles drawn alongside the request.
        @given(case=operation.as_strategy(), role=st.sampled_from(ROLES))
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: schemathesis.Case, role: str) -> None:
            check(case, role)

        call()
