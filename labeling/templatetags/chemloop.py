"""Small display filters shared by the chemloop pages."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def assay_value(value: float | None, assay: Any) -> str:
    """A value as the assay shows it: a class name for classification, 3 significant digits otherwise."""
    return assay.format_value(value) if assay is not None else ("—" if value is None else f"{value:.3g}")


@register.filter
def sig(value: Any, digits: int = 3) -> str:
    """Significant digits for metrics whose scale varies (RMSE 0.71, ECE 0.031); a text
    value (e.g. the strategy that picked a compound) is shown as it is."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—"
    return f"{value:.{int(digits)}g}"


@register.filter
def pct(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    return f"{100 * value:.0f}%"


@register.filter
def get(mapping: Any, key: Any) -> Any:
    return mapping.get(key) if hasattr(mapping, "get") else None


# Acronyms keep their capitals wherever identifiers are shown as words.
ACRONYMS = {"ucb": "UCB", "bald": "BALD", "ei": "EI"}


@register.filter
def words(value: Any) -> str:
    """snake_case identifiers as words: "expected_improvement" → "expected improvement", "ucb" → "UCB"."""
    return " ".join(ACRONYMS.get(w, w) for w in str(value).split("_"))
