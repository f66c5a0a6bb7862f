"""The browser fixture of the web tests, for the key point page's browser test."""

from __future__ import annotations

from tests.service.web.conftest import browser

__all__ = ["browser"]
