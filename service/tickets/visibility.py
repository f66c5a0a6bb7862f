"""What each reader may see of a ticket: the API and the pages both build their views here."""

from __future__ import annotations

from service.auth.models import Role, User
from service.redaction import coarse_address, mask_phone, redact
from service.tickets.models import (
    Ticket,
    TicketEvent,
    TicketEventPublic,
    TicketPublic,
    TicketRound,
    TicketRoundPublic,
)
from service.tickets.statemachine import label


def may_see_personal_data(user: User, ticket: Ticket) -> bool:
    """Only the dispatcher and the assigned office need the caller's identity (docs/WEBHOOK.md)."""
    return user.role == Role.dispatcher or (user.role == Role.office and user.office == ticket.office)


def public_view(ticket: Ticket, user: User) -> TicketPublic:
    """The ticket as `user` may read it: every free-text field redacted unless the reader needs it."""
    public = TicketPublic.model_validate(ticket, from_attributes=True, update={"state_label": label(ticket.state)})
    if may_see_personal_data(user, ticket):
        return public
    names = (ticket.caller_name,) if ticket.caller_name else ()
    public.caller_phone = mask_phone(public.caller_phone) or ""
    public.caller_name = redact(ticket.caller_name, names=names)
    public.title = redact(ticket.title, names=names)
    public.content = redact(ticket.content, names=names)
    if user.role != Role.office:
        # an office reads another office's ticket only when it assists it (联勤联动): it must find the place
        public.address = coarse_address(ticket.address)
    public.resolve_note = redact(ticket.resolve_note, names=names) or ticket.resolve_note
    public.extension_reason = redact(ticket.extension_reason, names=names) or ticket.extension_reason
    return public


def event_view(event: TicketEvent, ticket: Ticket, user: User) -> TicketEventPublic:
    """A timeline entry as `user` may read it: notes are free text and are redacted like the ticket's."""
    public = TicketEventPublic.model_validate(event, from_attributes=True)
    if may_see_personal_data(user, ticket):
        return public
    names = (ticket.caller_name,) if ticket.caller_name else ()
    public.note = redact(public.note, names=names) or public.note
    public.data = {k: redact(v, names=names) if isinstance(v, str) else v for k, v in public.data.items()}
    return public


def round_view(past: TicketRound, ticket: Ticket, user: User) -> TicketRoundPublic:
    """An earlier round as `user` may read it: its 办结 note is free text, redacted like the ticket's."""
    public = TicketRoundPublic.model_validate(past, from_attributes=True)
    if not may_see_personal_data(user, ticket):
        names = (ticket.caller_name,) if ticket.caller_name else ()
        public.resolve_note = redact(public.resolve_note, names=names) or public.resolve_note
    return public
