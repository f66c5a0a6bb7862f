"""The OpenAPI document is complete and the interactive docs work without the internet."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient


def test_every_schema_reference_is_defined(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    defined = set(schema["components"]["schemas"])
    referenced = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(schema)))
    assert referenced <= defined, referenced - defined
    body = schema["components"]["schemas"]["TicketCreate"]
    assert {"external_id", "received_at", "channel", "content"} <= set(body["required"])


def test_docs_are_served_from_this_server(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=["'](/[^"']+\.(?:js|css))""", page.text)
    assert assets and not re.search(r"https?://", page.text.split("<script>")[0].replace("http://www.w3.org", ""))
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
