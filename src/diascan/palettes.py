"""Colours of statuses, labels and mask planes (Qt-free data), with a colour-blind-safe option.

Two palettes: ``classic`` (diascan's original colours: matched orange, unmatched red, target
cyan, ...) and ``okabe-ito``, built from the Okabe & Ito (2008) palette of eight colours that
stay distinct for the common forms of colour blindness (protanopia, deuteranopia, tritanopia).
Colour is never the only cue: statuses also differ by marker shape and labels by letter
(R / B / ?), in the frames, the gallery and the region files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RGB = tuple[int, int, int]

#: Okabe & Ito's colour-blind-safe palette (Color Universal Design, 2008).
OKABE_ITO: dict[str, RGB] = {
    "black": (0, 0, 0),
    "orange": (230, 159, 0),
    "sky blue": (86, 180, 233),
    "bluish green": (0, 158, 115),
    "yellow": (240, 228, 66),
    "blue": (0, 114, 178),
    "vermillion": (213, 94, 0),
    "reddish purple": (204, 121, 167),
}

#: Mask plane colours of the overlay (the frames' mask check boxes use the same).
MASK_COLORS: dict[str, RGB] = {
    "BAD": (255, 0, 0),
    "SAT": (0, 255, 0),
    "INTRP": (0, 128, 255),
    "CR": (255, 0, 255),
    "EDGE": (255, 255, 0),
    "DETECTED": (0, 0, 255),
    "DETECTED_NEGATIVE": (0, 255, 255),
    "SUSPECT": (255, 128, 0),
    "NO_DATA": (128, 128, 128),
    "STREAK": (128, 0, 255),
}


#: Light grey: no status colour, no label colour, readable on the gallery's dark tiles.
NEUTRAL: RGB = (200, 200, 200)

#: The letter that marks each label wherever it is drawn (frames, gallery badges).
LABEL_LETTERS: dict[str, str] = {"real": "R", "bogus": "B", "unsure": "?"}


@dataclass(frozen=True)
class Palette:
    """Colours (RGB 0-255) by match status and by label."""

    name: str
    status: dict[str, RGB] = field(default_factory=dict)
    label: dict[str, RGB] = field(default_factory=dict)
    #: The colour of a status that is no match status: an alert's survey ("rubin", "ztf"),
    #: which says nothing about matching (never the 'unmatched' red).
    neutral: RGB = NEUTRAL

    def status_color(self, status: str) -> RGB:
        """Colour of ``status``: a visit's match status its own (:data:`DRAWN_AS` first: a
        provisional catalog row is drawn as 'missing'), anything else (an alert's survey) the
        neutral colour."""
        return self.status.get(drawn_as(status), self.neutral)

    def label_color(self, label: str | None) -> RGB | None:
        """Colour of ``label``; None for no label."""
        return None if label is None else self.label.get(str(label))


#: Statuses shown as another: a progressive load's provisional catalog rows (status
#: ``catalog``, :mod:`diascan.qt.qt_loading`) are catalog rows with no detection (yet), as
#: 'missing' ones are ("catalog only" in the legend), not unmatched detections.
DRAWN_AS = {"catalog": "missing"}


def drawn_as(status: str) -> str:
    """The status whose colour and marker ``status`` takes (itself unless in DRAWN_AS)."""
    return DRAWN_AS.get(status, status)


PALETTES: dict[str, Palette] = {
    "classic": Palette(
        name="classic",
        status={
            "matched": (255, 140, 0),
            "unmatched": (230, 30, 30),
            "target": (0, 230, 230),
            "missing": (230, 230, 0),
        },
        label={"real": (60, 220, 60), "bogus": (255, 60, 255), "unsure": (255, 255, 80)},
    ),
    "okabe-ito": Palette(
        name="okabe-ito",
        status={
            "matched": OKABE_ITO["orange"],
            "unmatched": OKABE_ITO["vermillion"],
            "target": OKABE_ITO["sky blue"],
            "missing": OKABE_ITO["yellow"],
        },
        label={
            "real": OKABE_ITO["bluish green"],
            "bogus": OKABE_ITO["reddish purple"],
            "unsure": OKABE_ITO["yellow"],
        },
    ),
}
DEFAULT_PALETTE = "classic"


def get_palette(name: str | None = None) -> Palette:
    """The palette ``name`` (default :data:`DEFAULT_PALETTE`); ValueError names the choices."""
    key = DEFAULT_PALETTE if name is None else str(name).strip().lower()
    if key not in PALETTES:
        raise ValueError(f"unknown palette {name!r}; one of {', '.join(PALETTES)}")
    return PALETTES[key]


def hex_color(rgb: RGB) -> str:
    """``(r, g, b)`` -> ``'#rrggbb'`` (region files, style sheets)."""
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


__all__ = [
    "DEFAULT_PALETTE",
    "DRAWN_AS",
    "LABEL_LETTERS",
    "MASK_COLORS",
    "NEUTRAL",
    "OKABE_ITO",
    "PALETTES",
    "Palette",
    "drawn_as",
    "get_palette",
    "hex_color",
]
