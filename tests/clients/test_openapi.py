"""The gateway's `GET /openapi.json` is a valid OpenAPI document."""

from __future__ import annotations

import json
import urllib.request

from openapi_spec_validator import validate


def test_openapi_document_is_valid(gateway):
    with urllib.request.urlopen(gateway + "/openapi.json", timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/json")
        spec = json.loads(response.read())
    validate(spec)
    assert spec["paths"], "the document describes no route"
