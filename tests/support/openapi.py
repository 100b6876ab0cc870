"""Checking real answers against the OpenAPI document the router serves.

``check`` finds the operation for an answer's request (templated paths such as
``/proxy/{namespace}/{policy}/v1/models`` included), the documented answer for its status
(or ``default`` for a status not listed), validates the body against that answer's schema for
its content type, checks the headers the answer declares required, and says which answer it
was, so that a test can compare the answers it saw with ``documented``.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema_rs

Document = dict[str, Any]
Answer = tuple[str, str, str, str]
"""(documented path, method, documented status or ``default``, content type) of one
answer."""


def match_path(document: Document, path: str) -> str:
    """The documented path (or path template) that ``path`` is."""
    if path in document["paths"]:
        return path
    for template in document["paths"]:
        if "{" in template:
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            if re.fullmatch(pattern, path):
                return template
    raise AssertionError(f"{path} is not documented")


def answer_of(document: Document, path: str, method: str, status: int
              ) -> tuple[str, dict[str, Any]]:
    """The key (status or ``default``) and the documented answer of one status."""
    operation = document["paths"][path][method.lower()]
    responses = operation["responses"]
    key = str(status) if str(status) in responses else "default"
    assert key in responses, f"{method} {path} answered {status}, which is not documented " \
        f"({sorted(responses)})"
    answer: dict[str, Any] = responses[key]
    return key, answer


def check(document: Document, response: httpx.Response, method: str | None = None) -> Answer:
    """Validate one real answer against the document; returns which answer it was.

    ``method`` is the operation whose answers it is, when that is not the request's method
    (a 405 answers a method the path does not take, and is documented under those it does).
    """
    request = response.request
    path = match_path(document, request.url.path)
    method = method or request.method
    key, answer = answer_of(document, path, method, response.status_code)
    for name, header in answer.get("headers", {}).items():
        if header.get("required"):
            assert name in response.headers, (method, path, key, f"no {name} header")
    content_type = response.headers["content-type"]
    media = content_type.split(";", maxsplit=1)[0].strip()
    content = answer["content"]
    assert media in content, f"{method} {path} {key}: {media} is not documented ({content})"
    schema: dict[str, Any] = content[media]["schema"]
    if media == "application/json":
        # Resolve "#/components/..." against the document itself.
        validator = jsonschema_rs.validator_for(
            {**schema, "components": document["components"]})
        body = response.json()
        errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, (method, path, response.status_code, errors, body)
    else:
        assert schema.get("type") == "string"
        assert response.text, (method, path, key, "an empty body")
    return path, method.lower(), key, media


def documented(document: Document) -> set[Answer]:
    """Every answer the document lists, one per content type."""
    return {(path, method, status, media)
            for path, operations in document["paths"].items()
            for method, operation in operations.items()
            for status, answer in operation["responses"].items()
            for media in answer["content"]}
