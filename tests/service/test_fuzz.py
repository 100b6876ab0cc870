"""Schemathesis fuzzes every operation of the running server against the OpenAPI document.

Generated requests, valid and invalid, must get answers that conform to the document: declared
status codes, content types and response schemas; invalid input is rejected with a 4xx and
valid input is not. ``not_a_server_error`` is replaced by a stricter check of our own: a 503
is this API's documented answer when no provider has a requested capability, so a 5xx is
allowed only as that (or an unready ``/readyz``), and never as anything else.

The schema is the document the server serves (``test_openapi`` checks they are equal), loaded
with ``from_dict`` at import: schemathesis' lazy ``from_fixture`` loader reads a pytest private
(``Node._nodeid``) that pytest 9 no longer has. Requests go to the fixture's running server.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from provider_router.service import openapi_document

from .conftest import ThreadedServer

DOCUMENTED_5XX = {"no_provider_available", "not_ready"}

schema = schemathesis.openapi.from_dict(openapi_document())


def only_documented_server_errors(ctx: Any, response: Any, case: Any) -> None:
    if response.status_code >= 500:
        body = response.json()
        assert response.status_code == 503, f"{response.status_code}: {response.text[:500]}"
        assert body["error"]["code"] in DOCUMENTED_5XX, response.text[:500]


@schema.parametrize()
@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_every_operation_conforms_to_the_document(case: Any,
                                                  fuzz_server: ThreadedServer) -> None:
    case.call_and_validate(base_url=fuzz_server.url, excluded_checks=[not_a_server_error],
                           additional_checks=[only_documented_server_errors])
