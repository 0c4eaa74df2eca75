"""Generated requests against our own OpenAPI document: whatever a client sends, never a 500."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings


def test_no_server_error_and_error_shape(app, login):
    admin = login("admin")
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: schemathesis.Case) -> None:
            response = case.call(headers=admin)
            assert response.status_code < 500, (case.method, case.path, response.text[:500])
            if response.status_code >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
                body = response.json()
                assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body

        call()
