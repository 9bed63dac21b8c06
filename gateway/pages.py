"""The click path's pages, rendered once per shape and filled in per click.

A page's template, language, campaign version and the app it is shown in decide all of its text;
only a few values differ from click to click (the link, the click id, the challenge). Rendering
through Flask and Jinja costs about a millisecond; the click path renders fallback pages for
in-app browsers (most clicks, in the apps refgate is for), challenge pages for suspicious clicks
and preview pages for every crawler, so a flood of bots or a festival of WeChat clicks would spend
its CPU in the template engine. Each page is rendered once with markers where those values go,
split at the markers, and then joined with the values, escaped as Jinja escapes them.

Everyone still gets the same page for the same link: the cache only skips recomputing it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Hashable, Mapping
from typing import Any, Protocol

from markupsafe import escape

from gateway.campaigns import ClickView

#: Rendered page shapes kept per worker; when full, the cache starts over (edited campaigns
#: leave their old versions behind, and languages come from a header anyone can send).
SHAPES = 512
#: Longer Accept-Language headers (real ones are far shorter) get their page rendered each time.
LONGEST_LANGUAGE_HEADER = 200
#: Markers carry a random part of the process's own, so no text a page shows (a campaign's name,
#: a token) can look like one.
_NONCE = secrets.token_hex(6)
_MARKER = "rgslot" + _NONCE + "n{}x"
_MARKERS = re.compile("rgslot" + _NONCE + r"n(\d+)x")


class PageRenderer(Protocol):
    def __call__(self, environ: dict[str, Any], template: str, **context: Any) -> str: ...


class Shape:
    """A rendered page split at its markers: literal text, a slot, literal text, ..."""

    __slots__ = ("literals", "names")

    def __init__(self, literals: list[str], names: list[str]) -> None:
        self.literals = literals
        self.names = names

    def fill(self, slots: Mapping[str, str]) -> str:
        literals, names = self.literals, self.names
        parts = [literals[0]]
        for index, name in enumerate(names):
            parts.append(escape(slots[name]))
            parts.append(literals[index + 1])
        return "".join(parts)


class ClickPages:
    """Renders a template with ``context`` (the same for many clicks) and ``slots`` (strings
    that differ per click), from a cached shape when the context allows one."""

    def __init__(self, render: PageRenderer, size: int = SHAPES) -> None:
        self.render = render
        self.size = size
        self._shapes: dict[Hashable, Shape | None] = {}

    def __call__(
        self,
        environ: dict[str, Any],
        template: str,
        slots: Mapping[str, str],
        context: Mapping[str, Any],
    ) -> str:
        key = shape_key(template, environ, slots, context)
        if key is None:
            return self.render(environ, template, **context, **slots)
        try:
            shape = self._shapes[key]
        except KeyError:
            shape, page = self._prepare(environ, template, slots, context)
            if len(self._shapes) >= self.size:
                self._shapes.clear()
            self._shapes[key] = shape
            return page
        if shape is None:  # the template does something with a slot other than print it
            return self.render(environ, template, **context, **slots)
        return shape.fill(slots)

    def _prepare(
        self,
        environ: dict[str, Any],
        template: str,
        slots: Mapping[str, str],
        context: Mapping[str, Any],
    ) -> tuple[Shape | None, str]:
        """The page's shape (None when it cannot be filled in) and this click's page, rendered
        afresh: a shape is kept only if filling it gives exactly that page."""
        page = self.render(environ, template, **context, **slots)
        names = list(slots)
        markers = {name: _MARKER.format(index) for index, name in enumerate(names)}
        pieces = _MARKERS.split(self.render(environ, template, **context, **markers))
        shape = Shape(pieces[0::2], [names[int(index)] for index in pieces[1::2]])
        if shape.fill(slots) != page:  # a slot went through a filter, or was left out
            return None, page
        return shape, page


def shape_key(
    template: str, environ: dict[str, Any], slots: Mapping[str, str], context: Mapping[str, Any]
) -> Hashable | None:
    """What decides a page's text apart from its slots, or None when the context holds
    something that cannot be told apart by value (the page is then rendered each time)."""
    # The language is negotiated from this header (and only it: public pages have no session).
    language = environ.get("HTTP_ACCEPT_LANGUAGE", "")
    if len(language) > LONGEST_LANGUAGE_HEADER:
        return None
    parts: list[Hashable] = [template, language, tuple(slots)]
    for name, value in context.items():
        if isinstance(value, ClickView):
            parts.append((name, value.campaign.id, value.campaign.version))
        elif value is None or isinstance(value, str | int | float | bool):
            parts.append((name, value))
        else:
            return None
    return tuple(parts)
