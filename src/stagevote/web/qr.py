"""The QR code of an event's web join link, drawn on the server as inline SVG (segno)."""

from __future__ import annotations

import functools

import segno
from markupsafe import Markup


@functools.lru_cache(maxsize=256)
def qr_svg(url: str) -> Markup:
    """An SVG (scalable: a viewBox, no fixed size) of `url`, error correction M or better, a 2-module margin.

    The markup holds nothing but path data derived from `url`, so it is safe to place in a page as is.
    """
    code = segno.make(url, error="m", micro=False)
    svg = code.svg_inline(scale=1, border=2, dark="#000", light="#fff", omitsize=True, svgclass="qr")
    return Markup(svg)  # noqa: S704  (segno's own markup: path data only, no text of ours)
