"""Every ticket endpoint × every role: who may read, who may act, and on whose tickets."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.state import AppState
from service.tickets.statemachine import PUBLIC_ACTIONS, TRANSITIONS
from tests.conftest import auth, payload, post_ticket, token_for
from tests.service.tickets.test_statemachine import BODIES

ROLES = {"admin": None, "dispatcher": None, "office": "pingan", "other_office": "guanli", "viewer": None}


@pytest.fixture
def tokens(state: AppState) -> dict[str, dict[str, str]]:
    return {name: auth(token_for(state, "office" if office else name, office)) for name, office in ROLES.items()}


def test_reads(client: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    tid = post_ticket(client, payload()).json()["id"]
    for name, headers in tokens.items():
        listing = client.get("/api/v1/tickets", headers=headers).json()
        detail = client.get(f"/api/v1/tickets/{tid}", headers=headers)
        if name == "other_office":
            assert listing["total"] == 0 and detail.status_code == 404
        else:
            assert listing["total"] == 1 and detail.status_code == 200
    assert client.get("/api/v1/tickets").status_code == 401
    assert client.get(f"/api/v1/tickets/{tid}", headers=auth("htl_forged")).status_code == 401


def test_actions(client: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    for action in PUBLIC_ACTIONS:
        allowed = TRANSITIONS[action].roles
        # permission answers come first, so the forbidden roles go before the ones that change the ticket
        for name, headers in sorted(tokens.items(), key=lambda kv: ("office" if ROLES[kv[0]] else kv[0]) in allowed):
            tid = post_ticket(client, payload(external_id=f"M-{action}")).json()["id"]
            role = "office" if ROLES[name] else name
            r = client.post(f"/api/v1/tickets/{tid}/{action}", json=BODIES[action], headers=headers)
            if name == "other_office":
                # another office's ticket does not exist for it, whatever the action
                assert r.status_code == 404, (action, name, r.text)
            elif role not in allowed:
                assert r.status_code == 403, (action, name, r.text)
            else:
                # allowed to try: the answer is about state or input, never about permission
                assert r.status_code in (200, 409, 422), (action, name, r.text)
        assert client.post(f"/api/v1/tickets/{tid}/{action}", json={}).status_code == 401


def test_repeated_bad_tokens_are_throttled(client: TestClient) -> None:
    codes = [client.get("/api/v1/tickets", headers=auth(f"htl_bad{i}")).status_code for i in range(25)]
    assert codes[0] == 401 and codes[-1] == 429
