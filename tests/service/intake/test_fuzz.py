"""Fuzzing the signed intake webhook (docs/WEBHOOK.md) with VALID signatures, on SQLite and PostgreSQL.

Every request is signed, so it gets past the 401 and reaches parsing, validation and storage. Properties:

- never a 5xx (the TestClient re-raises server exceptions, so a 500 fails the test with its traceback);
- a refusal is 400, 413 or 422: a 422 names the offending field in ``detail[].loc`` (``["body", field]``, or
  ``["body"]`` when the body is no JSON object at all), a 400/413 says why in Chinese;
- a refused request changes nothing in the database (ticket and ticket_event rows counted before and after);
- an accepted request is stored exactly once, its re-delivery answers 200 with the same id and writes nothing, and
  what is stored is what was sent, up to the normalisation TicketCreate documents (times in UTC; title, content,
  address and caller_name stripped; caller_phone NFKC-normalised without spaces and hyphens).

Each test function builds a fresh app and database (about half a second), so cases are looped inside a few tests
rather than parametrized one by one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select

from service.state import AppState
from service.tickets.models import CHANNELS, KINDS, URGENCIES, Ticket, TicketEvent
from tests.conftest import payload, signed_headers

URL = "/api/v1/hotline/tickets"
TEXT_FIELDS = {"title": 200, "content": 5000, "address": 300, "caller_name": 64}
STRING_FIELDS = (*TEXT_FIELDS, "external_id", "channel", "caller_phone", "urgency", "kind")
DATE_FIELDS = ("received_at", "deadline")
CJK = re.compile(r"[\u4e00-\u9fff]")


def fuzz(n: int) -> settings:
    """Bounded examples: the whole file has to run in well under a minute on both backends."""
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# helpers ---------------------------------------------------------------------------------------------------


def send(client: TestClient, body: bytes) -> Response:
    response: Response = client.post(URL, content=body, headers=signed_headers(body))
    return response


def encode(data: Any, *, ascii_only: bool = False) -> bytes:
    return json.dumps(data, ensure_ascii=ascii_only).encode()


def counts(state: AppState) -> tuple[int, int]:
    with Session(state.engine) as s:
        tickets = s.exec(select(func.count()).select_from(Ticket)).one()
        events = s.exec(select(func.count()).select_from(TicketEvent)).one()
    return int(tickets), int(events)


def stored(state: AppState, external_id: str) -> list[Ticket]:
    with Session(state.engine) as s:
        return list(s.exec(select(Ticket).where(Ticket.external_id == external_id)).all())


def error_locs(r: Response) -> list[list[Any]]:
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail, r.text
    return [err["loc"] for err in detail]


def assert_refused(r: Response, before: tuple[int, int], state: AppState, *fields: str, case: Any = None) -> None:
    """A clear 4xx that names what is wrong, and not a row written."""
    assert r.status_code in (400, 413, 422), (case, r.status_code, r.text[:500])
    if r.status_code == 422:
        locs = error_locs(r)
        assert all(loc[0] == "body" for loc in locs), (case, locs)
        for field in fields:
            assert ["body", field] in [loc[:2] for loc in locs], (case, field, locs)
    else:
        assert CJK.search(r.json()["detail"]), (case, r.text)
    assert counts(state) == before, case


def assert_syntax_refusal(r: Response, before: tuple[int, int], state: AppState, case: Any = None) -> None:
    """A body that is no JSON object at all: 400, or 422 pointing at the body itself."""
    assert_refused(r, before, state, case=case)
    if r.status_code == 422:
        assert all(loc == ["body"] for loc in error_locs(r)), (case, r.text)
        assert {err["type"] for err in r.json()["detail"]} <= {"json_invalid", "model_type"}, (case, r.text)


def displayed(value: str) -> str:
    """A text field as stored: format characters (bidi controls, zero-width, BOM) removed, then ends stripped."""
    return "".join(ch for ch in value if unicodedata.category(ch) != "Cf").strip()


def normalised(data: dict[str, Any]) -> dict[str, Any]:
    """What TicketCreate promises to store for an accepted payload (its documented normalisation)."""
    out: dict[str, Any] = {field: displayed(data.get(field, "")) for field in TEXT_FIELDS}
    phone = unicodedata.normalize("NFKC", data.get("caller_phone", ""))
    out["caller_phone"] = phone.replace(" ", "").replace("-", "")
    out["external_id"] = data["external_id"]
    out["channel"] = data["channel"]
    out["urgency"] = data.get("urgency", "一般")
    out["kind"] = data.get("kind")
    for field in DATE_FIELDS:
        value = data.get(field)
        out[field] = None if value is None else dt.datetime.fromisoformat(value)  # aware: compared as instants
    return out


def assert_accepted_once(
    client: TestClient, r: Response, body: bytes, before: tuple[int, int], state: AppState, data: dict[str, Any]
) -> Ticket:
    """201, one new row that holds what was sent, and a re-delivery that answers 200 with the same id."""
    assert r.status_code == 201, r.text[:500]
    tickets, events = counts(state)
    assert tickets == before[0] + 1 and events > before[1]
    rows = stored(state, data["external_id"])
    assert len(rows) == 1 and rows[0].id == r.json()["id"]
    ticket = rows[0]
    for field, value in normalised(data).items():
        assert getattr(ticket, field) == value, (field, getattr(ticket, field), value)
    again = send(client, body)
    assert again.status_code == 200 and again.json()["id"] == ticket.id, again.text
    assert counts(state) == (tickets, events)
    return ticket


def _valid_body() -> bytes:
    return encode(payload())


# malformed JSON --------------------------------------------------------------------------------------------

NOT_AN_OBJECT = {
    "empty": b"",
    "whitespace": b"   \r\n\t ",
    "null": b"null",
    "true": b"true",
    "number": b"42",
    "huge number": b"-1e999",
    "string": '"群租"'.encode(),
    "empty array": b"[]",
    "array of object": b'[{"external_id": "A1"}]',
    "NaN": b"NaN",
    "Infinity": b"Infinity",
    "open brace": b"{",
    "extra brace": b"{}}",
    "single quotes": b"{'external_id': 'A1'}",
    "trailing comma": b'{"external_id": "A1",}',
    "comment": b'{"external_id": "A1" /* c */}',
    "bare key": b'{external_id: "A1"}',
    "raw control char in string": b'{"content": "\x01raw"}',
    "raw newline in string": b'{"content": "line\nbreak"}',
    "bad escape": b'{"content": "\\x41"}',
    "short unicode escape": b'{"content": "\\u12"}',
    "two objects": _valid_body() + _valid_body(),
    "trailing x": _valid_body() + b"x",
    "trailing brace": _valid_body() + b"}",
    "trailing comma after object": _valid_body() + b",",
    "trailing NUL": _valid_body() + b"\x00",
    "trailing 0xff": _valid_body() + b"\xff",
    "trailing comment": _valid_body() + b" // comment",
}


def test_bodies_that_are_not_one_json_object_are_refused(client: TestClient, state: AppState) -> None:
    for case, body in NOT_AN_OBJECT.items():
        before = counts(state)
        assert_syntax_refusal(send(client, body), before, state, case)
    data = payload()  # trailing whitespace is part of the JSON grammar
    body = encode(data) + b" \r\n\t"
    before = counts(state)
    assert_accepted_once(client, send(client, body), body, before, state, data)


@fuzz(40)
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_every_truncation_is_refused(client: TestClient, state: AppState, cut: int) -> None:
    body = encode(payload(), ascii_only=cut % 2 == 0)
    truncated = body[: cut % len(body)]  # every proper prefix, including cuts inside a UTF-8 sequence
    before = counts(state)
    assert_syntax_refusal(send(client, truncated), before, state, cut)


def test_nan_infinity_and_other_json_literals_name_the_field(client: TestClient, state: AppState) -> None:
    literals = ["NaN", "Infinity", "-Infinity", "1e400", "-0", "1E2", "true", "[]", "{}"]
    for field in (*STRING_FIELDS, *DATE_FIELDS):
        for literal in literals:
            text = json.dumps({k: v for k, v in payload().items() if k != field}, ensure_ascii=False)
            body = (text[:-1] + f', "{field}": {literal}}}').encode()
            before = counts(state)
            assert_refused(send(client, body), before, state, field, case=(field, literal))


@fuzz(80)
@given(data=st.data(), mutation=st.sampled_from(["insert", "replace", "delete", "swap"]))
def test_random_byte_mutations_never_500_and_never_half_store(
    client: TestClient, state: AppState, data: st.DataObject, mutation: str
) -> None:
    body = bytearray(encode(payload(), ascii_only=data.draw(st.booleans())))
    at = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    chunk = data.draw(st.binary(min_size=1, max_size=4))
    if mutation == "insert":
        body[at:at] = chunk
    elif mutation == "replace":
        body[at : at + len(chunk)] = chunk
    elif mutation == "delete":
        del body[at : at + len(chunk)]
    else:
        other = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
        body[at], body[other] = body[other], body[at]
    before = counts(state)
    r = send(client, bytes(body))
    event(f"HTTP {r.status_code}")
    if r.status_code == 201:  # the mutation left a valid work order: stored once, as the body says
        assert_accepted_once(client, r, bytes(body), before, state, json.loads(bytes(body)))
    else:
        assert_refused(r, before, state, case=bytes(body))


@fuzz(40)
@given(blob=st.binary(max_size=400))
def test_arbitrary_bytes_are_refused_cleanly(client: TestClient, state: AppState, blob: bytes) -> None:
    before = counts(state)
    assert_syntax_refusal(send(client, blob), before, state, blob)


def test_json_syntax_errors_are_explained_in_chinese(client: TestClient, state: AppState) -> None:
    for body in (b"", b"{", b"[1]x", b"[" * 5000, b'{"a": NaN'):
        r = send(client, body)
        assert r.status_code == 422
        assert all(CJK.search(err["msg"]) for err in r.json()["detail"]), r.text


# encodings -------------------------------------------------------------------------------------------------


def _latin1_payload() -> dict[str, Any]:
    return payload(content="Café naïve", title="", address="", caller_name="", kind=None, channel="APP")


def _not_utf8() -> dict[str, bytes]:
    chinese = json.dumps(payload(), ensure_ascii=False)
    bodies = {
        encoding: chinese.encode(encoding)
        for encoding in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "gbk", "gb18030")
    }
    bodies["latin-1"] = json.dumps(_latin1_payload(), ensure_ascii=False).encode("latin-1")
    bodies["cp1252"] = json.dumps({**_latin1_payload(), "content": "“quoted” café"}, ensure_ascii=False).encode(
        "cp1252"
    )
    utf8 = encode(payload(content="楼道堆物投诉"))
    for case, bad in {
        "lone continuation byte": b"\x80\x80",
        "overlong slash": b"\xc0\xaf",
        "encoded surrogate": b"\xed\xa0\x80",
        "beyond U+10FFFF": b"\xf4\x90\x80\x80",
        "truncated sequence": "投诉".encode()[:4],
        "0xff 0xfe": b"\xff\xfe",
    }.items():
        bodies[case] = utf8.replace("投诉".encode(), bad)
    return bodies


def test_non_utf8_bodies_are_refused_and_never_stored_as_mojibake(client: TestClient, state: AppState) -> None:
    for case, body in _not_utf8().items():
        before = counts(state)
        assert_refused(send(client, body), before, state, case=case)


def test_non_utf8_bodies_get_400_saying_utf8(client: TestClient, state: AppState) -> None:
    for case, body in _not_utf8().items():
        r = send(client, body)
        assert r.status_code == 400, (case, r.text)
        assert "UTF-8" in r.json()["detail"] and CJK.search(r.json()["detail"]), case


@fuzz(30)
@given(text=st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1, max_size=30))
def test_gbk_encoded_chinese_is_never_accepted(client: TestClient, state: AppState, text: str) -> None:
    body = json.dumps(payload(content=text), ensure_ascii=False).encode("gbk", errors="ignore")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:  # by chance also valid UTF-8 (the famous 联通): indistinguishable from UTF-8, nothing to assert
        assume(False)
    before = counts(state)
    assert_refused(send(client, body), before, state, case=text)


def test_utf8_bom_is_refused_or_ignored_never_stored(client: TestClient, state: AppState) -> None:
    data = payload()
    body = b"\xef\xbb\xbf" + encode(data)
    before = counts(state)
    r = send(client, body)
    if r.status_code == 201:  # RFC 8259 §8.1 allows ignoring it; then nothing of it may reach the ticket
        assert_accepted_once(client, r, body, before, state, data)
    else:
        assert_syntax_refusal(r, before, state)


def test_utf8_bom_is_ignored(client: TestClient, state: AppState) -> None:
    data = payload()
    body = b"\xef\xbb\xbf" + encode(data)
    before = counts(state)
    assert_accepted_once(client, send(client, body), body, before, state, data)


# duplicate keys --------------------------------------------------------------------------------------------


def _with_duplicate(data: dict[str, Any], key: str, first: Any) -> bytes:
    """The same key twice: an earlier ``first`` value, then the payload's own."""
    text = json.dumps(data, ensure_ascii=False)
    return ("{" + json.dumps(key) + ": " + json.dumps(first, ensure_ascii=False) + ", " + text[1:]).encode()


def test_duplicate_keys_never_store_the_earlier_value(client: TestClient, state: AppState) -> None:
    """Today the last value wins (jiter); whatever the policy, the earlier value must never be what is stored."""
    data = payload(channel="网站")
    before = counts(state)
    r = send(client, _with_duplicate(data, "channel", "电话"))
    if r.status_code == 201:
        (ticket,) = stored(state, data["external_id"])
        assert ticket.channel == "网站"
    else:
        assert_refused(r, before, state, "channel")


def test_duplicate_keys_are_refused_naming_the_key(client: TestClient, state: AppState) -> None:
    for key, first in (("channel", "网站"), ("content", "另一段内容"), ("external_id", "OTHER1")):
        before = counts(state)
        r = send(client, _with_duplicate(payload(), key, first))
        assert r.status_code == 422, (key, r.text)
        assert_refused(r, before, state, key, case=key)
        assert CJK.search(r.json()["detail"][0]["msg"])


# huge, deep and wide bodies --------------------------------------------------------------------------------


def test_each_declared_length_limit_is_exact_and_long_fields_are_422(client: TestClient, state: AppState) -> None:
    limits = {**TEXT_FIELDS, "external_id": 64, "caller_phone": 32}
    for field, limit in limits.items():
        fill = {"external_id": "A", "caller_phone": "1"}.get(field, "很")
        data = payload(**{field: fill * limit})
        if field == "external_id":
            data["external_id"] = fill * (limit - 12) + uuid.uuid4().hex[:12].upper()
        body = encode(data)
        before = counts(state)
        assert_accepted_once(client, send(client, body), body, before, state, data)
        before = counts(state)
        assert_refused(send(client, encode(payload(**{field: fill * (limit + 1)}))), before, state, field)
    for size in (20_000, 200_000):  # still inside the 256 KiB body limit: the field is what is too long
        for field in (*limits, "channel", "urgency", "kind"):
            before = counts(state)
            r = send(client, encode(payload(**{field: "9" * size})))
            assert r.status_code == 422, (field, size, r.text[:300])
            assert_refused(r, before, state, field, case=(field, size))
            assert len(r.content) < 10_000, "the refusal must not echo the input"


def test_megabyte_bodies_are_413_with_or_without_content_length(client: TestClient, state: AppState) -> None:
    body = encode(payload(content="很" * 400_000))  # 1.2 MB
    before = counts(state)
    r = send(client, body)
    assert r.status_code == 413 and "字节" in r.json()["detail"], r.text

    def chunks() -> Iterator[bytes]:  # chunked transfer: no Content-Length to trust
        for i in range(0, len(body), 65_536):
            yield body[i : i + 65_536]

    r = client.post(URL, content=chunks(), headers=signed_headers(body))
    assert r.status_code == 413 and "字节" in r.json()["detail"], r.text
    just_over = encode(payload(content="很" * 90_000))  # 270 kB: over 256 KiB although content is "only" 90k chars
    r = send(client, just_over)
    assert r.status_code == 413 and "字节" in r.json()["detail"], r.text
    assert counts(state) == before


def test_deep_nesting_is_a_clean_422(client: TestClient, state: AppState) -> None:
    text = json.dumps(payload(), ensure_ascii=False)
    for depth in (10_000, 100_000):  # at most 200 kB: inside the body limit, so the parser itself must cope
        array, obj = "[" * depth + "]" * depth, '{"a":' * (depth // 4) + "1" + "}" * (depth // 4)
        bodies = {
            "array": array,
            "object": obj,
            "mixed": '[{"a":' * (depth // 8) + "1" + "}]" * (depth // 8),
            "in a field": text.replace('"content": ', '"content": ' + array + ', "x": ', 1),
            "under an unknown key": text[:-1] + ', "nested": ' + obj + "}",
            "as a duplicate key's first value": '{"content": ' + array + ", " + text[1:],
        }
        for shape, body in bodies.items():
            before = counts(state)
            r = send(client, body.encode())
            assert r.status_code == 422, (shape, depth, r.text[:300])
            assert_refused(r, before, state, case=(shape, depth))


def test_many_unknown_keys_are_all_named(client: TestClient, state: AppState) -> None:
    extra = {f"x{i}": i for i in range(3_000)}
    before = counts(state)
    r = send(client, encode({**payload(), **extra}))
    assert_refused(r, before, state, "x0", "x2999")
    assert len(error_locs(r)) == 3_000


# unicode in every text field -------------------------------------------------------------------------------

EDGE = [
    *("\u0000", "\u0001", "\u0008", "\u001b", "\u001f", "\u007f", "\u0085", "\u009f"),  # C0, DEL, C1: refused
    *("\n", "\r", "\t", " ", "\u3000", "\u00a0", "\u2028"),  # whitespace: kept inside, stripped at the ends
    *("\u200f", "\u200e", "\u202e", "\u2066", "\u200d", "\u200b", "\ufeff", "\u00ad"),  # RTL, ZWJ, BOM...: removed
    *("😀", "👨‍👩‍👧", "🇨🇳", "e\u0301", "\u0301", "\u0f7e\u0f80"),  # emoji, combining marks
    *("臺灣", "龍", "違法建築", "𠮷", "𪚥", "ＡＢＣ１２３", "①", "\ufffd", "\uffff", "\U0010ffff"),
    *("市民来电反映", "上南二村45号", "a", "\\", '"', "/", "'", "<script>", "%00", "\\u0000"),
]
CLEAN_EDGE = [ch for ch in EDGE if not any(unicodedata.category(c) == "Cc" and c not in "\n\r\t" for c in ch)]
CLEAN_TEXT = st.one_of(
    st.lists(st.sampled_from(CLEAN_EDGE), max_size=12).map("".join),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cc"]), max_size=60),
)
ANY_TEXT = st.one_of(st.lists(st.sampled_from(EDGE), max_size=12).map("".join), st.text(max_size=40))


def _refused_char(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in value)


@fuzz(60)
@given(
    values=st.fixed_dictionaries(dict.fromkeys(TEXT_FIELDS, CLEAN_TEXT)),
    dirty=st.none() | st.sampled_from(list(TEXT_FIELDS)),
    dirt=ANY_TEXT,
    ascii_only=st.booleans(),
)
def test_unicode_in_text_fields_is_refused_or_stored_verbatim(
    client: TestClient, state: AppState, values: dict[str, str], dirty: str | None, dirt: str, ascii_only: bool
) -> None:
    if dirty is not None:  # at most one field from the unrestricted alphabet, so that most examples get stored
        values[dirty] = dirt
    data = payload(**values)
    bad = [
        field
        for field, value in values.items()
        if _refused_char(value) or len(value) > TEXT_FIELDS[field] or (field == "content" and not displayed(value))
    ]
    body = encode(data, ascii_only=ascii_only)
    before = counts(state)
    r = send(client, body)
    event(f"HTTP {r.status_code}")
    if not bad:
        ticket = assert_accepted_once(client, r, body, before, state, data)
        assert "\x00" not in ticket.title + ticket.content + ticket.address + ticket.caller_name
        return
    assert_refused(r, before, state, *bad)
    messages = {err["loc"][1]: err["msg"] for err in r.json()["detail"]}
    for field in bad:
        if _refused_char(values[field]):
            assert "控制字符" in messages[field], messages


def test_control_characters_are_refused_in_chinese_naming_the_field(client: TestClient, state: AppState) -> None:
    for field in TEXT_FIELDS:
        for char in ("\u0000", "\u0007", "\u001b", "\u007f", "\u0085"):
            for ascii_only in (True, False):
                before = counts(state)
                r = send(client, encode(payload(**{field: f"楼道{char}堆物"}), ascii_only=ascii_only))
                assert_refused(r, before, state, field, case=(field, char))
                (err,) = r.json()["detail"]
                assert "控制字符" in err["msg"] and f"U+{ord(char):04X}" in err["msg"], err


def test_lone_surrogate_escapes_are_refused(client: TestClient, state: AppState) -> None:
    """A str holding a lone surrogate could not even be encoded for PostgreSQL: it must not get that far."""
    for field in (*TEXT_FIELDS, "caller_phone", "external_id"):
        for escape in ("\\ud800", "\\udfff", "\\udc00\\ud800", "\\ud800\\u0041", "x\\ud83d", "\\ud83d\\ud83d"):
            text = json.dumps(payload(**{field: "PLACEHOLDER"}), ensure_ascii=False)
            before = counts(state)
            r = send(client, text.replace("PLACEHOLDER", escape).encode())
            assert r.status_code == 422, (field, escape, r.text)
            assert_refused(r, before, state, case=(field, escape))


def test_escapes_surrogate_pairs_and_long_lines_round_trip(client: TestClient, state: AppState) -> None:
    cases = [
        '楼上😀漏水 "引号" \\反斜杠 /斜杠 \u2028 行分隔 👨‍👩‍👧 e\u0301 臺灣 \u202e反向\u202c',
        "投" * 5000,
        "行\n" * 2500,
        "a" * 4999 + "😀",
        "  \u3000前后空白被去掉\u3000\n ",
    ]
    for content in cases:
        for ascii_only in (True, False):
            data = payload(content=content)
            body = encode(data, ascii_only=ascii_only)
            before = counts(state)
            ticket = assert_accepted_once(client, send(client, body), body, before, state, data)
            assert ticket.content == displayed(content)


def test_whitespace_only_content_is_refused_not_stored_empty(client: TestClient, state: AppState) -> None:
    for blank in (" ", "\n\t\r", "\u3000\u3000", "\u2028 \u00a0"):
        before = counts(state)
        r = send(client, encode(payload(content=blank)))
        assert_refused(r, before, state, "content", case=blank)
        assert "不能为空" in r.json()["detail"][0]["msg"]


# phones ----------------------------------------------------------------------------------------------------

PHONE_CHARS = [*"0123456789+- ", *"０１２３４５６７８９＋－\u3000", *"٣۴²①a()#\u200b"]


def _phone_ok(phone: str) -> bool:
    """The documented rule: after NFKC and without spaces and hyphens, an optional + and ASCII digits."""
    kept = unicodedata.normalize("NFKC", phone).replace(" ", "").replace("-", "")
    return not kept or re.fullmatch(r"\+?[0-9]+", kept) is not None


@fuzz(50)
@given(phone=st.text(alphabet=st.sampled_from(PHONE_CHARS), max_size=20))
def test_phone_numbers_are_ascii_digits_once_stored(client: TestClient, state: AppState, phone: str) -> None:
    data = payload(caller_phone=phone)
    body = encode(data)
    before = counts(state)
    r = send(client, body)
    event(f"HTTP {r.status_code}")
    if _phone_ok(phone):
        ticket = assert_accepted_once(client, r, body, before, state, data)
        assert re.fullmatch(r"(\+?[0-9]+)?", ticket.caller_phone), ticket.caller_phone
    else:
        assert_refused(r, before, state, "caller_phone", case=phone)


def test_full_width_phones_are_normalised_and_other_digits_refused(client: TestClient, state: AppState) -> None:
    normalised_phones = {
        "１３８１２３４５６７８": "13812345678",
        "１３８ １２３４ ５６７８": "13812345678",
        "＋８６－１３８－１２３４－５６７８": "+8613812345678",
        "021-5888\u30008888": "02158888888",
        "": "",
    }
    for sent, kept in normalised_phones.items():
        data = payload(caller_phone=sent)
        body = encode(data)
        before = counts(state)
        ticket = assert_accepted_once(client, send(client, body), body, before, state, data)
        assert ticket.caller_phone == kept
    for phone in ("١٣٨١٢٣٤٥٦٧٨", "۱۳۸", "138\u200b1234", "138+1234", "++138", "+", "(021)5888", "1e5", "138\t1"):
        before = counts(state)
        r = send(client, encode(payload(caller_phone=phone)))
        assert_refused(r, before, state, "caller_phone", case=phone)
        assert CJK.search(r.json()["detail"][0]["msg"]), phone


# types, dates and enums ------------------------------------------------------------------------------------

NOT_A_STRING = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
BAD_DATETIME_TEXT = [
    "2026-13-01T00:00:00+08:00",
    "2026-02-30T09:00:00+08:00",
    "2026-11-20T24:30:00+08:00",
    "2026-11-20T09:61:00+08:00",
    "2026-11-20T09:30:00+25:00",
    "2026-11-20T09:30:00",
    "2026-11-20",
    "2026/11/20 09:30",
    "0000-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00+08:00",  # converting to UTC overflowed: was a 500
    "9999-12-31T23:59:59-08:00",  # likewise
    "10000-01-01T00:00:00+00:00",
    "1969-12-31T23:59:59+00:00",
    "2100-01-01T00:00:00+00:00",
    "２０２６-１１-２０T09:30:00+08:00",
    "2026年11月20日",
]
NOT_A_DATETIME = st.one_of(
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
    st.text(max_size=30).filter(lambda s: not re.match(r"\s*\d", s)),
    st.sampled_from(BAD_DATETIME_TEXT),
)


@fuzz(50)
@given(field=st.sampled_from(STRING_FIELDS), value=NOT_A_STRING)
def test_non_strings_for_string_fields_are_422_naming_the_field(
    client: TestClient, state: AppState, field: str, value: Any
) -> None:
    before = counts(state)
    assert_refused(send(client, encode(payload(**{field: value}))), before, state, field, case=value)


@fuzz(50)
@given(field=st.sampled_from(DATE_FIELDS), value=NOT_A_DATETIME)
def test_bad_datetimes_are_422_naming_the_field(client: TestClient, state: AppState, field: str, value: Any) -> None:
    before = counts(state)
    assert_refused(send(client, encode(payload(**{field: value}))), before, state, field, case=value)


def test_every_out_of_range_or_invalid_datetime_is_named(client: TestClient, state: AppState) -> None:
    for field in DATE_FIELDS:
        for value in BAD_DATETIME_TEXT:
            before = counts(state)
            assert_refused(send(client, encode(payload(**{field: value}))), before, state, field, case=value)


OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)


def _in_range(value: dt.datetime) -> bool:
    """Independent of the model: the UTC wall time, computed by hand, within 2000–2099."""
    offset = value.utcoffset()
    assert offset is not None
    try:
        utc = value.replace(tzinfo=None) - offset
    except OverflowError:
        return False
    return 2000 <= utc.year <= 2099


@fuzz(60)
@given(
    received=st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=OFFSETS)
    | st.datetimes(min_value=dt.datetime(1999, 12, 30), max_value=dt.datetime(2100, 1, 2), timezones=OFFSETS),
    deadline=st.none()
    | st.datetimes(min_value=dt.datetime(2000, 1, 2), max_value=dt.datetime(2099, 12, 30), timezones=OFFSETS)
    | st.datetimes(timezones=st.none() | OFFSETS),
)
def test_aware_datetimes_are_stored_as_the_same_instant(
    client: TestClient, state: AppState, received: dt.datetime, deadline: dt.datetime | None
) -> None:
    data = payload(received_at=received.isoformat(), deadline=None if deadline is None else deadline.isoformat())
    bad = [] if _in_range(received) else ["received_at"]
    if deadline is not None and (deadline.tzinfo is None or not _in_range(deadline)):
        bad.append("deadline")
    if not bad and deadline is not None and deadline < received:
        bad = ["deadline"]  # an upstream deadline before the call
    elif not bad and received > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=state.rules.intake.future_skew_minutes):
        bad = ["received_at"]  # the clocks would start in the future
    body = encode(data)
    before = counts(state)
    r = send(client, body)
    event(f"HTTP {r.status_code}")
    if bad:
        assert_refused(r, before, state, *bad)
        return
    ticket = assert_accepted_once(client, r, body, before, state, data)  # compares instants
    assert ticket.received_at.utcoffset() == dt.timedelta(0)


def test_unix_timestamps_are_read_as_utc_and_range_checked(client: TestClient, state: AppState) -> None:
    for seconds in (1_763_600_000, 1_763_600_000_000):  # pydantic reads large numbers as milliseconds
        data = payload(received_at=seconds)
        r = send(client, encode(data))
        assert r.status_code == 201, r.text
        (ticket,) = stored(state, data["external_id"])
        assert ticket.received_at == dt.datetime(2025, 11, 20, 0, 53, 20, tzinfo=dt.UTC)
    for seconds in (0, -1, 4_102_444_800, 10**20):
        before = counts(state)
        assert_refused(send(client, encode(payload(received_at=seconds))), before, state, "received_at")


ENUM_CANDIDATES = [*CHANNELS, *URGENCIES, *KINDS, "电话 ", " 紧急", "ＡＰＰ", "app", "投訴", "紧急\u200b", "一般\u0000"]


@fuzz(60)
@given(
    field=st.sampled_from(["channel", "urgency", "kind"]),
    value=st.text(max_size=10) | st.sampled_from(ENUM_CANDIDATES),
)
def test_enums_accept_exactly_their_values(client: TestClient, state: AppState, field: str, value: str) -> None:
    allowed = {"channel": CHANNELS, "urgency": URGENCIES, "kind": KINDS}[field]
    data = payload(**{field: value})
    body = encode(data)
    before = counts(state)
    r = send(client, body)
    event(f"HTTP {r.status_code}")
    if value in allowed:
        assert_accepted_once(client, r, body, before, state, data)
        return
    assert_refused(r, before, state, field, case=value)
    (err,) = r.json()["detail"]
    assert CJK.search(err["msg"]) or err["type"] == "string_too_long", err


def test_missing_null_and_malformed_required_fields_are_named(client: TestClient, state: AppState) -> None:
    for field in ("external_id", "received_at", "channel", "content"):
        for data in ({k: v for k, v in payload().items() if k != field}, payload(**{field: None})):
            before = counts(state)
            assert_refused(send(client, encode(data)), before, state, field, case=data)
    for external_id in ("", " A1", "A1 ", "A1\n", "Ａ1", "工单1", "A/1", "A%201", "A\u200b1", "../etc", "A1\u0000"):
        before = counts(state)
        r = send(client, encode(payload(external_id=external_id)))
        assert_refused(r, before, state, "external_id", case=external_id)


# everything at once ----------------------------------------------------------------------------------------


def test_every_field_at_its_limit_with_astral_characters_is_stored(client: TestClient, state: AppState) -> None:
    """PostgreSQL VARCHAR(n) counts characters as Python does: n emoji fit in a column of n."""
    data = payload(
        external_id="Z" * 52 + uuid.uuid4().hex[:12],
        title="😀" * 200,
        content="𠮷" * 5000,
        address="👨‍👩‍👧" * 60,
        caller_name="臺" * 64,
        caller_phone="+" + "9" * 31,
        urgency="紧急",
        kind="建议",
        deadline="2099-12-31T23:59:59.999999+00:00",
    )
    body = encode(data)
    before = counts(state)
    assert_accepted_once(client, send(client, body), body, before, state, data)
    data = payload(address="﷽" * 300)  # one character that NFKC expands to 18: no building key, no trouble
    body = encode(data)
    before = counts(state)
    assert_accepted_once(client, send(client, body), body, before, state, data)


def test_long_addresses_are_stored_with_a_bounded_building_key(client: TestClient, state: AppState) -> None:
    for address in (
        "上南二村" * 70 + "45号302室",  # _BUILDING: a 280-character estate
        "浦东新区" + "洪山路" * 95 + "123号",  # _ROAD_NUMBER
        "花园" * 148 + "5幢",
        "云台" * 145 + "小区",  # _ESTATE_ONLY
    ):
        data = payload(address=address)
        body = encode(data)
        before = counts(state)
        ticket = assert_accepted_once(client, send(client, body), body, before, state, data)
        assert ticket.building_key is None or len(ticket.building_key) <= 120, len(ticket.building_key)
