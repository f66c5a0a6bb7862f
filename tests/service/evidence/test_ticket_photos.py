"""Photos on tickets over real HTTP: upload at 先行联系 and 办结, read back under the ticket's access rules, GPS
gone, fakes refused with nothing stored, the after-photo rule at 办结, the ticket page, and an S3-compatible store."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import ExifTags, Image
from sqlmodel import Session, select

from service.app import create_app
from service.evidence.models import TicketPhoto
from service.rules import EvidenceRules, ServiceRules
from service.state import AppState
from tests.conftest import auth, make_state, payload, post_ticket, token_for
from tests.service.web.test_sessions import login


def phone_photo(seed: int = 0) -> bytes:
    """A JPEG as a phone writes it: EXIF with the camera and the GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (31.0, 14.0, 2.5)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (seed * 40 % 256, 120, 90)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


HTML = b"<!doctype html><html><script>alert(1)</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def files(*items: tuple[str, bytes, str]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", item) for item in items]


def dispatched(client: TestClient, state: AppState) -> tuple[int, dict[str, str]]:
    """A 群租 ticket routed to 平安办, and that office's credentials."""
    ticket_id = post_ticket(client, payload()).json()["id"]
    client.post(f"/api/v1/tickets/{ticket_id}/confirm", json={}, headers=auth(token_for(state, "dispatcher")))
    return ticket_id, auth(token_for(state, "office", "pingan"))


def test_an_office_attaches_photos_and_readers_get_them_without_gps(client: TestClient, state: AppState) -> None:
    ticket_id, office = dispatched(client, state)
    url = f"/api/v1/tickets/{ticket_id}/photos"
    sent = client.post(
        url, data={"stage": "contact"}, files=files(("a.jpg", phone_photo(), "image/jpeg")), headers=office
    )
    assert sent.status_code == 201, sent.text
    photo = sent.json()[0]
    assert photo["stage"] == "contact" and photo["content_type"] == "image/jpeg" and photo["width"] == 64
    image = client.get(photo["url"], headers=office)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.headers["x-content-type-options"] == "nosniff"
    assert not Image.open(io.BytesIO(image.content)).getexif()  # camera and GPS gone
    again = client.post(
        url, data={"stage": "contact"}, files=files(("b.jpg", phone_photo(), "image/jpeg")), headers=office
    )
    assert [p["id"] for p in again.json()] == [photo["id"]]  # the same photo twice is kept once
    viewer = auth(token_for(state, "viewer"))
    assert client.get(photo["url"], headers=viewer).status_code == 200
    assert (
        client.post(
            url, data={"stage": "contact"}, files=files(("c.jpg", phone_photo(1), "image/jpeg")), headers=viewer
        ).status_code
        == 403
    )
    other = auth(token_for(state, "office", "guanli"))
    assert client.get(photo["url"], headers=other).status_code == 404
    assert client.get(f"/api/v1/tickets/{ticket_id}/photos/{photo['id'] + 99}", headers=office).status_code == 404
    detail = client.get(f"/api/v1/tickets/{ticket_id}", headers=office).json()
    assert [p["id"] for p in detail["photos"]] == [photo["id"]]
    assert detail["timeline"][-1]["action"] == "photo"


@pytest.mark.parametrize(
    ("name", "data", "declared"),
    [
        ("x.jpg", HTML, "image/jpeg"),
        ("x.jpg", SVG, "image/jpeg"),
        ("x.svg", SVG, "image/svg+xml"),
        ("x.png", b"", "image/png"),
    ],
)
def test_a_fake_photo_is_refused_and_nothing_is_kept(
    client: TestClient, state: AppState, name: str, data: bytes, declared: str
) -> None:
    ticket_id, office = dispatched(client, state)
    good = ("ok.jpg", phone_photo(), "image/jpeg")
    sent = client.post(
        f"/api/v1/tickets/{ticket_id}/photos",
        data={"stage": "contact"},
        files=files(good, (name, data, declared)),
        headers=office,
    )
    assert sent.status_code == 422, sent.text
    assert sent.json()["detail"][0]["loc"][-1] == "photos"
    with Session(state.engine) as session:
        assert session.exec(select(TicketPhoto)).first() is None
    assert not any(Path(state.settings.photo_dir).rglob("*.*"))
    bad_stage = client.post(
        f"/api/v1/tickets/{ticket_id}/photos", data={"stage": "later"}, files=files(good), headers=office
    )
    assert bad_stage.status_code == 422 and bad_stage.json()["detail"][0]["loc"][-1] == "stage"


@pytest.fixture
def strict(db_url: str, rules: ServiceRules, classifier: Any) -> Iterator[AppState]:
    """The street's rules with 群租 needing an after-photo to close."""
    strict_rules = rules.model_copy(update={"evidence": EvidenceRules(require_after_photo=("group_renting",))})
    st = make_state(db_url, strict_rules, classifier)
    yield st
    st.engine.dispose()


def test_a_category_that_needs_an_after_photo_cannot_close_without_one(strict: AppState) -> None:
    with TestClient(create_app(state=strict)) as client:
        ticket_id, office = dispatched(client, strict)
        for action in ("accept", "contact"):
            assert client.post(f"/api/v1/tickets/{ticket_id}/{action}", json={}, headers=office).status_code == 200
        body = {"result": "实际解决", "note": "已拆除隔断"}
        contact_only = client.post(
            f"/api/v1/tickets/{ticket_id}/photos",
            data={"stage": "contact"},
            files=files(("a.jpg", phone_photo(), "image/jpeg")),
            headers=office,
        )
        assert contact_only.status_code == 201
        refused = client.post(f"/api/v1/tickets/{ticket_id}/resolve", json=body, headers=office)
        assert refused.status_code == 422 and "整改后照片" in refused.text
        assert refused.json()["detail"][0]["loc"][-1] == "photos"
        after = client.post(
            f"/api/v1/tickets/{ticket_id}/photos",
            data={"stage": "resolve"},
            files=files(("b.jpg", phone_photo(2), "image/jpeg")),
            headers=office,
        )
        assert after.status_code == 201
        done = client.post(f"/api/v1/tickets/{ticket_id}/resolve", json=body, headers=office)
        assert done.status_code == 200 and done.json()["state"] == "resolved"
        late = client.post(
            f"/api/v1/tickets/{ticket_id}/photos",
            data={"stage": "resolve"},
            files=files(("c.jpg", phone_photo(3), "image/jpeg")),
            headers=office,
        )
        assert late.status_code == 409


def test_the_ticket_page_uploads_and_shows_photos(client: TestClient, state: AppState) -> None:
    ticket_id, _ = dispatched(client, state)
    csrf = login(client, token_for(state, "office", "pingan"))
    page = client.get(f"/ui/tickets/{ticket_id}").text
    assert 'enctype="multipart/form-data"' in page and 'capture="environment"' in page
    refused = client.post(
        f"/ui/tickets/{ticket_id}/photos",
        data={"csrf": csrf, "stage": "contact"},
        files=files(("x.jpg", HTML, "image/jpeg")),
        follow_redirects=True,
    )
    assert "上传照片：" in refused.text and "JPEG" in refused.text
    done = client.post(
        f"/ui/tickets/{ticket_id}/photos",
        data={"csrf": csrf, "stage": "contact"},
        files=files(("a.jpg", phone_photo(), "image/jpeg")),
        follow_redirects=True,
    )
    assert "已上传照片 1 张" in done.text
    src = done.text.split('<div class="photos">')[1].split('src="')[1].split('"')[0]
    image = client.get(src)
    assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).format == "JPEG"


def test_photos_go_to_an_s3_compatible_store(
    s3_endpoint: str, db_url: str, rules: ServiceRules, classifier: Any
) -> None:
    from service.evidence.storage import S3Store

    options = {"s3_endpoint_url": s3_endpoint, "s3_access_key": "test", "s3_secret_key": "test-secret-key"}
    st = make_state(db_url, rules, classifier, photo_store="s3", s3_bucket="hotline-photos", **options)
    assert isinstance(st.photos, S3Store)
    st.photos.ensure_bucket()
    try:
        with TestClient(create_app(state=st)) as client:
            ticket_id, office = dispatched(client, st)
            sent = client.post(
                f"/api/v1/tickets/{ticket_id}/photos",
                data={"stage": "contact"},
                files=files(("a.jpg", phone_photo(), "image/jpeg")),
                headers=office,
            )
            assert sent.status_code == 201, sent.text
            with Session(st.engine) as session:
                key = session.exec(select(TicketPhoto.key)).one()
            assert st.photos.exists(key)
            assert not any(Path(st.settings.photo_dir).rglob("*.*"))  # nothing on local disk
            image = client.get(sent.json()[0]["url"], headers=office)
            assert image.status_code == 200 and not Image.open(io.BytesIO(image.content)).getexif()
    finally:
        st.engine.dispose()
