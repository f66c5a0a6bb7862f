"""Routing: category → office (from the classifier decision), urgency, and the address → 片区 grid."""

from __future__ import annotations

from dataclasses import dataclass

from classifier.decision import Decision
from service.rules import ServiceRules


@dataclass(frozen=True)
class Route:
    category: str
    office: str
    grid: str | None
    urgent: bool


def grid_for(address: str, rules: ServiceRules) -> str | None:
    """The 片区 whose road or estate name occurs in the address; the longest match wins (上南二村 over 上南路)."""
    best: tuple[int, str] | None = None
    for grid, names in rules.places.grids.items():
        for name in names:
            if name in address and (best is None or len(name) > best[0]):
                best = (len(name), grid)
    return best[1] if best else None


def route(*, decision: Decision, address: str, upstream_urgency: str, rules: ServiceRules) -> Route:
    return Route(
        category=decision.category,
        office=decision.office,
        grid=grid_for(address, rules),
        urgent=upstream_urgency == "紧急" or decision.urgent,
    )


def fallback_route(*, address: str, upstream_urgency: str, rules: ServiceRules) -> Route:
    """Where a ticket goes when classification failed: the fallback category, for the dispatcher to review."""
    category = rules.classifier.fallback_category
    return Route(
        category=category,
        office=rules.category_office(category),
        grid=grid_for(address, rules),
        urgent=upstream_urgency == "紧急",
    )
