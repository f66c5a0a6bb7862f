"""The documentation stays true to the repository: links resolve, nothing points outside it, and the webhook
contract in docs/WEBHOOK.md (fields, example, signature, callbacks) matches the code."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from annotated_types import MaxLen

from service.intake import routes as intake_routes
from service.notify.service import CALLBACK_KINDS, enqueue
from service.signing import sign, verify
from service.tickets.models import CHANNELS, KINDS, URGENCIES, Ticket, TicketCreate, TicketEvent

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
WEBHOOK = DOCS / "WEBHOOK.md"
# the product and domain docs this change introduced; each must exist and be reachable from README.md
EXPECTED_DOCS = ("README.md", "LIFECYCLE.md", "DEADLINES.md", "METRICS.md", "WEBHOOK.md", "PRIVACY.md")

_FENCE = re.compile(r"^```.*?^```[ \t]*$", re.M | re.S)
_INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_FORBIDDEN = (re.compile(r"\.\./shared"), re.compile(r"DESIGN\s*§"), re.compile(r"DESIGN\.md"))


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _links(markdown: str) -> list[str]:
    """Link targets outside fenced code blocks (inline and reference-style)."""
    prose = _FENCE.sub("", markdown)
    return [m.group(1) for m in _INLINE_LINK.finditer(prose)] + [m.group(1) for m in _REFERENCE_LINK.finditer(prose)]


def _relative_targets(markdown: str) -> list[str]:
    return [t for t in _links(markdown) if not _SCHEME.match(t) and not t.startswith("#")]


def _local_link_targets(path: Path) -> set[Path]:
    targets = set()
    for target in _relative_targets(_text(path)):
        file_part = target.split("#", 1)[0].split("?", 1)[0]
        targets.add((path.parent / file_part).resolve())
    return targets


# ---------------------------------------------------------------- links and references


def test_link_parser_finds_links_and_skips_code() -> None:
    sample = "见 [a](docs/A.md#x) 与 [b](https://x.org) 及 [c](#top)\n```\n[d](nope.md)\n```\n[e]: ../E.md\n"
    assert _links(sample) == ["docs/A.md#x", "https://x.org", "#top", "../E.md"]
    assert _relative_targets(sample) == ["docs/A.md#x", "../E.md"]


def test_expected_docs_exist() -> None:
    missing = [name for name in EXPECTED_DOCS if not (DOCS / name).is_file()]
    assert not missing, f"docs/ 缺少 {missing}"


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_to_a_file_in_the_repository(path: Path) -> None:
    broken = []
    for target in _relative_targets(_text(path)):
        file_part = target.split("#", 1)[0].split("?", 1)[0]
        resolved = (path.parent / file_part).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)} 中的链接指向仓库里不存在的文件：{broken}"


def test_readme_and_docs_index_link_every_doc() -> None:
    from_readme = _local_link_targets(ROOT / "README.md")
    from_index = _local_link_targets(DOCS / "README.md")
    for name in EXPECTED_DOCS:
        assert (DOCS / name).resolve() in from_readme, f"README.md 没有链接 docs/{name}"
        if name != "README.md":
            assert (DOCS / name).resolve() in from_index, f"docs/README.md 的索引没有列出 {name}"


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_reference_to_material_outside_the_repository(path: Path) -> None:
    text = _text(path)
    found = [pattern.pattern for pattern in _FORBIDDEN if pattern.search(text)]
    assert not found, f"{path.relative_to(ROOT)} 引用了仓库之外的规格或数据：{found}"


def test_readme_says_where_the_teddy_cup_data_comes_from_and_goes() -> None:
    readme = _text(ROOT / "README.md")
    where = ("第八届泰迪杯数据挖掘挑战赛", "智慧政务", "https://www.tipdm.org", "GitHub", "附件2_示例数据_e2.csv")
    for phrase in where:
        assert phrase in readme, phrase
    # the rebuild command reads the files from a directory the reader names, and only even ids
    assert "scripts/district_labels.py --teddy $D" in readme and "只用留言编号为偶数的留言" in readme


# ---------------------------------------------------------------- the webhook contract


def _webhook() -> str:
    return _text(WEBHOOK)


def _block_after(marker: str, language: str) -> str:
    text = _webhook()
    at = text.index(f"<!-- {marker} -->")
    match = re.compile(rf"^```{language}\n(.*?)^```", re.M | re.S).search(text, at)
    assert match is not None, f"{marker} 之后没有 {language} 代码块"
    return match.group(1)


def _example_body() -> dict[str, Any]:
    body = json.loads(_block_after("example-body", "json"))
    assert isinstance(body, dict)
    return body


def _field_rows() -> dict[str, str]:
    text = _webhook()
    table = text[text.index("<!-- ticketcreate-fields:start -->") : text.index("<!-- ticketcreate-fields:end -->")]
    rows = {}
    for line in table.splitlines():
        match = re.match(r"^\|\s*`([a-z_]+)`\s*\|", line)
        if match:
            assert match.group(1) not in rows, f"字段 {match.group(1)} 列了两次"
            rows[match.group(1)] = line
    return rows


def test_documented_fields_are_exactly_ticketcreate_fields() -> None:
    assert list(_field_rows()) == list(TicketCreate.model_fields)


def test_documented_required_flags_match_the_model() -> None:
    for name, row in _field_rows().items():
        required_cell = [cell.strip() for cell in row.strip("|").split("|")][2]
        documented = required_cell == "是"
        assert documented == TicketCreate.model_fields[name].is_required(), f"{name} 的“必填”写错了：{required_cell}"


def test_documented_limits_and_values_match_the_model() -> None:
    enumerated = {"channel": CHANNELS, "urgency": URGENCIES, "kind": KINDS}
    for name, row in _field_rows().items():
        if name in enumerated:
            for value in enumerated[name]:
                assert f"`{value}`" in row, f"{name} 的取值 {value} 没有写出"
            continue
        limits = [m.max_length for m in TicketCreate.model_fields[name].metadata if isinstance(m, MaxLen)]
        for limit in limits:
            assert str(limit) in row, f"{name} 的长度上限 {limit} 没有写出"


def test_example_body_validates_and_shows_every_field() -> None:
    body = _example_body()
    ticket = TicketCreate.model_validate(body)
    assert set(body) == set(TicketCreate.model_fields)
    # what the doc says about normalisation holds for its own example
    assert ticket.caller_phone == "13800138000"
    assert ticket.received_at == dt.datetime(2026, 11, 22, 1, 30, tzinfo=dt.UTC)


def _signing_values() -> tuple[str, str, str, str]:
    block = _block_after("signing-example", "bash")
    secret = re.search(r"^SECRET='([^']*)'$", block, re.M)
    timestamp = re.search(r"^TS=(\d+)$", block, re.M)
    body = re.search(r"^BODY='([^']*)'$", block, re.M)
    expected = re.search(r"^# 输出：(sha256=[0-9a-f]{64})$", block, re.M)
    assert secret and timestamp and body and expected, "签名示例缺少 SECRET、TS、BODY 或输出"
    return secret.group(1), timestamp.group(1), body.group(1), expected.group(1)


def test_signature_example_matches_the_implementation() -> None:
    secret, timestamp, body, expected = _signing_values()
    assert sign(secret, timestamp, body.encode()) == expected
    # the signed body is the documented example, and the service accepts exactly this signature
    assert json.loads(body) == _example_body()
    raw = body.encode()
    verify(secret=secret, timestamp=timestamp, signature=expected, body=raw, tolerance=300, now=int(timestamp))


def test_every_shell_body_in_the_doc_is_the_example() -> None:
    bodies = re.findall(r"^BODY='([^']*)'$", _webhook(), re.M)
    assert len(bodies) >= 2, "签名示例和 curl 示例都应给出 BODY"
    for body in bodies:
        assert json.loads(body) == _example_body()


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("openssl") is None, reason="需要 bash 与 openssl")
def test_signature_shell_snippet_computes_the_documented_signature() -> None:
    _, _, _, expected = _signing_values()
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _block_after("signing-example", "bash")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_documented_headers_are_the_ones_the_route_reads() -> None:
    parameters = inspect.signature(intake_routes.receive_ticket).parameters
    for header in ("X-Hotline-Timestamp", "X-Hotline-Signature"):
        assert f"`{header}`" in _webhook()
        assert header.lower().replace("-", "_") in parameters, header
    assert "`POST /api/v1/hotline/tickets`" in _webhook() or "POST /api/v1/hotline/tickets" in _webhook()
    assert any(getattr(r, "path", None) == "/api/v1/hotline/tickets" for r in intake_routes.router.routes)


# ---------------------------------------------------------------- callbacks


def _section(heading: str) -> str:
    """The text under exactly this heading line, up to the next heading of the same level."""
    text = _webhook()
    start = text.index(f"\n{heading}\n") + 1
    end = text.find("\n### ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def _table_rows(section: str) -> list[list[str]]:
    """Cells of the data rows (below the |---| line) of the first table in `section`."""
    lines = [line.strip() for line in section.splitlines() if line.strip().startswith("|")]
    separator = next(i for i, line in enumerate(lines) if re.fullmatch(r"\|[\s|:-]+\|", line))
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[separator + 1 :]]


def _code(cell: str) -> str:
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"表格第一列应是代码：{cell}"
    return match.group(1)


def test_documented_callback_events_match_the_code() -> None:
    rows = _table_rows(_section("### 事件"))
    assert {_code(cells[0]): cells[1] for cells in rows} == CALLBACK_KINDS


class _Session:
    def __init__(self) -> None:
        self.added: list[Any] = []

    def add(self, obj: Any) -> None:
        self.added.append(obj)


def test_documented_callback_body_fields_match_the_payload() -> None:
    now = dt.datetime(2026, 11, 24, 6, 12, 40, tzinfo=dt.UTC)
    ticket = Ticket(
        id=42,
        external_id="SH12345-20261122-000123",
        source="hotline",
        office="chengyun",
        received_at=now,
        channel="电话",
        content="楼道飞线充电",
        content_hash="0" * 64,
        created_at=now,
        updated_at=now,
    )
    event = TicketEvent(
        id=7, ticket_id=42, at=now, actor="平安办", actor_role="office", action="resolve", to_state="resolved"
    )
    message = enqueue(session=_Session(), ticket=ticket, event=event, now=now)  # type: ignore[arg-type]
    assert message is not None
    documented = [_code(cells[0]) for cells in _table_rows(_section("### 请求体"))]
    assert sorted(documented) == sorted(message.payload)
    assert message.idempotency_key == "hotline-evt-7"
    assert "`hotline-evt-<" in _webhook()
