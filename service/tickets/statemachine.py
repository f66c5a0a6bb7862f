"""The ticket state machine (docs/LIFECYCLE.md): which action may move a ticket from which state, and who may do it."""

from __future__ import annotations

from dataclasses import dataclass

from service.auth.models import Role
from service.tickets.models import OPEN_STATES, STATE_LABELS, State

SYSTEM = "system"


@dataclass(frozen=True)
class Transition:
    sources: frozenset[State]
    # None: the target depends on the action's input or the rules (classify, resolve, follow-up, reject-resolution)
    # or the state does not change
    target: State | None
    roles: frozenset[str]
    label: str


_DISPATCH = frozenset({Role.dispatcher, Role.admin})
_OFFICE = frozenset({Role.office, Role.admin})
_WORKING = frozenset({State.accepted, State.contacted})

TRANSITIONS: dict[str, Transition] = {
    "classify": Transition(frozenset({State.received}), None, frozenset({SYSTEM}), "分类派单"),
    "confirm": Transition(frozenset({State.pending_review, State.returned}), State.dispatched, _DISPATCH, "确认派单"),
    "reroute": Transition(
        frozenset({State.pending_review, State.returned, State.dispatched}), State.dispatched, _DISPATCH, "改派"
    ),
    "merge": Transition(OPEN_STATES, State.cancelled, _DISPATCH, "合并重复工单"),
    "split": Transition(frozenset({State.pending_review}), State.dispatched, _DISPATCH, "拆分（非重复）并派单"),
    "cancel": Transition(OPEN_STATES, State.cancelled, _DISPATCH, "作废"),
    "accept": Transition(frozenset({State.dispatched, State.reopened}), State.accepted, _OFFICE, "签收"),
    "contact": Transition(frozenset({State.accepted}), State.contacted, _OFFICE, "先行联系"),
    # 已办结, or 办结待审 for a category under 办结审核 (evidence.review_resolution)
    "resolve": Transition(_WORKING, None, _OFFICE, "办结"),
    # a returned ticket goes back to the dispatcher's review; `returned` remains only in the history of old tickets
    "return": Transition(frozenset({State.dispatched, State.accepted}), State.pending_review, _OFFICE, "退单"),
    "request-extension": Transition(_WORKING, None, _OFFICE, "申请延期"),
    "approve-extension": Transition(_WORKING, None, _DISPATCH, "批准延期"),
    "refuse-extension": Transition(_WORKING, None, _DISPATCH, "驳回延期"),
    "follow-up": Transition(frozenset({State.resolved}), None, _DISPATCH, "回访"),
    "reopen": Transition(frozenset({State.resolved, State.closed}), State.reopened, _DISPATCH, "重办"),
    # 办结审核 (docs/LIFECYCLE.md): the office's 办结 of a reviewed category counts only once approved
    "approve-resolution": Transition(frozenset({State.resolution_review}), State.resolved, _DISPATCH, "办结审核通过"),
    # back to the office's work: 已先行联系 if it had contacted, else 已签收
    "reject-resolution": Transition(frozenset({State.resolution_review}), None, _DISPATCH, "驳回办结"),
}

# Actions an API client may call (classify is the intake's own step).
PUBLIC_ACTIONS = tuple(a for a in TRANSITIONS if a != "classify")


def label(state: str) -> str:
    try:
        return STATE_LABELS[State(state)]
    except ValueError:
        return state


def refusal(action: str, state: str) -> str | None:
    """Why `action` is not allowed in `state`, or None when it is."""
    transition = TRANSITIONS[action]
    if State(state) in transition.sources:
        return None
    allowed = "、".join(label(s) for s in sorted(transition.sources))
    return f"工单当前状态为「{label(state)}」，不能{transition.label}（仅在 {allowed} 状态下可以）"
