"""Licence plates (GA 36-2018): cleaning, well-formedness, OCR-tolerant matching, masking.

Pure functions: the caller does the registry look-ups and passes their results in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

MatchKind = Literal["exact", "fuzzy", "none"]

# The 31 mainland provincial abbreviations.
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
SUFFIXES = "学警挂港澳领"
EMBASSY = "使"

# Removed after width folding: space, hyphen, middle dot (U+00B7), bullet (U+2022),
# katakana middle dot (U+30FB), full stop, underscore. Escaped because they look alike.
_SEPARATORS = frozenset(" -\u00b7\u2022\u30fb._")

# Full-width ASCII U+FF01..U+FF5E sits 0xFEE0 above its half-width form.
_HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

_SERIAL = "[A-HJ-NP-Z0-9]"  # A-Z without I and O, and digits
_PREFIX = f"[{PROVINCES}][A-Z]"
_GRAMMAR = re.compile(
    "|".join(
        (
            f"{_PREFIX}{_SERIAL}{{5}}",  # ordinary
            f"{_PREFIX}(?:[DF]{_SERIAL}{{5}}|{_SERIAL}{{5}}[DF])",  # new energy
            f"{_PREFIX}{_SERIAL}{{4}}[{SUFFIXES}]",  # coach, police, trailer, HK, Macao, consular
            f"{EMBASSY}[0-9]{{6}}",  # embassy
        )
    )
)

# Serial characters an OCR engine misreads as one another, each folded to a representative.
_CONFUSION_CLASSES = ("0ODQ", "1I", "8B", "2Z", "5S", "6G")
_CONFUSION = str.maketrans({c: cls[0] for cls in _CONFUSION_CLASSES for c in cls})

# Characters that never occur in a serial, replaced by the digit they were mistaken for.
_SERIAL_REPAIR = str.maketrans({"I": "1", "O": "0"})


def clean_plate(raw: str) -> str:
    """Upper-case, fold full-width ASCII to half-width, drop whitespace and separators."""
    folded = raw.upper().translate(_HALF_WIDTH)
    return "".join(c for c in folded if c not in _SEPARATORS and not c.isspace())


def is_well_formed(plate: str) -> bool:
    """Whether a cleaned plate follows GA 36-2018.

    Grammar (P = one of the 31 province characters, L = a letter A-Z, O included so that
    police plates such as 粤O... pass, S = a serial character: A-Z except I and O, or 0-9):

    - ordinary, 7 characters: ``P L S S S S S``;
    - new energy, 8 characters: ``P L S S S S S S`` whose first or last serial character is
      D or F (苏AD12345, 苏A12345D);
    - special, 7 characters: ``P L S S S S X`` with X one of 学 警 挂 港 澳 领;
    - embassy, 7 characters: ``使`` followed by 6 digits.
    """
    return _GRAMMAR.fullmatch(plate) is not None


# GA 36-2018 plate colours by form (DOMAIN.md section 7). Where DOMAIN.md is silent (学 coach,
# 挂 trailer, 港/澳 plates, ordinary 7-character plates) every colour of a 7-character plate
# it allows is accepted: a stricter table would make real plates unreadable.
NEW_ENERGY_COLORS = frozenset({"green", "yellow_green"})
POLICE_COLORS = frozenset({"white"})
DIPLOMATIC_COLORS = frozenset({"black"})
SEVEN_CHARACTER_COLORS = frozenset({"blue", "yellow", "white", "black"})


def fits_color(plate: str, color: str) -> bool:
    """Whether a well-formed plate's form allows its colour: 8 characters are green or
    yellow_green, 警 white, 使 and 领 black, other 7-character plates blue, yellow, white or black."""
    if len(plate) == 8:
        return color in NEW_ENERGY_COLORS
    if plate.endswith("警"):
        return color in POLICE_COLORS
    if plate.startswith(EMBASSY) or plate.endswith("领"):
        return color in DIPLOMATIC_COLORS
    return color in SEVEN_CHARACTER_COLORS


def _serial_start(plate: str) -> int:
    # Embassy plates carry no issuing-authority letter: the serial follows 使 directly.
    return 1 if plate.startswith(EMBASSY) else 2


def readable_plate(cleaned: str) -> str | None:
    """The plate as read, or repaired by reading I as 1 and O as 0 in the serial; else None.

    None means the event is ``plate_unreadable``. The issuing-authority letter is never
    repaired: O is legitimate there.
    """
    if is_well_formed(cleaned):
        return cleaned
    start = _serial_start(cleaned)
    repaired = cleaned[:start] + cleaned[start:].translate(_SERIAL_REPAIR)
    return repaired if is_well_formed(repaired) else None


def confusion_key(plate: str) -> str:
    """The plate with each serial character folded to its OCR-confusion representative.

    Plates that differ only by confusable serial characters share a key, so the
    database can index it and a fuzzy look-up is one indexed query.
    """
    start = _serial_start(plate)
    return plate[:start] + plate[start:].translate(_CONFUSION)


def decide_match(
    plate: str, exact_registered: bool, same_key_registered: Sequence[str]
) -> tuple[MatchKind, str | None]:
    """Match a read plate against the registry (the caller has filtered by plate colour).

    ``same_key_registered`` holds one entry per registered vehicle sharing the plate's
    confusion key; a fuzzy match is accepted only when exactly one vehicle fits, since
    two candidates leave the reading ambiguous.
    """
    if exact_registered:
        return "exact", plate
    key = confusion_key(plate)
    candidates = [p for p in same_key_registered if confusion_key(p) == key]
    if len(candidates) == 1:
        return "fuzzy", candidates[0]
    return "none", None


def decide_identity(cleaned: str, plate: str, known: Mapping[str, bool]) -> tuple[MatchKind, str | None]:
    """The match and the plate of the vehicle a read is filed under, or None (DOMAIN.md section 7).

    `cleaned` is the read as cleaned, `plate` its readable form (OCR-repaired when needed);
    `known` maps each known plate of the read's colour and confusion key to whether it is
    registered. A registered vehicle gets the read only by an exact or a single fuzzy match;
    when no registered plate fits, the read is its own provisional identity `plate` (known
    or to be created); when several fit, it is ambiguous and belongs to no vehicle (None).
    """
    registered = [p for p, is_registered in known.items() if is_registered]
    kind, matched = decide_match(cleaned, known.get(cleaned, False), registered)
    if kind != "none":
        return kind, matched
    return "none", None if registered else plate


def mask_plate(plate: str) -> str:
    """Plate for public disclosure: the first 2 and the last character, the rest starred.

    Plates of 3 characters or fewer would disclose everything, so they are fully starred.
    """
    if len(plate) <= 3:
        return "*" * len(plate)
    return plate[:2] + "*" * (len(plate) - 3) + plate[-1]
