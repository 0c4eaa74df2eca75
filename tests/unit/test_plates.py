from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.plates import (
    PROVINCES,
    clean_plate,
    confusion_key,
    decide_identity,
    decide_match,
    fits_color,
    is_well_formed,
    mask_plate,
    readable_plate,
)

SERIAL_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
CONFUSION_CLASSES = ("0ODQ", "1I", "8B", "2Z", "5S", "6G")


# clean_plate ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("苏B12345", "苏B12345"),
        ("苏b12345", "苏B12345"),
        ("苏\uff22\uff11\uff12\uff13\uff14\uff15", "苏B12345"),  # full-width letter, digits
        ("苏\uff42\uff11\uff12\uff13\uff14\uff15", "苏B12345"),  # full-width lower case
        ("苏B\u300012345", "苏B12345"),  # ideographic space
        ("苏B 12345", "苏B12345"),
        ("苏B-12345", "苏B12345"),
        ("苏B\u00b712345", "苏B12345"),  # middle dot
        ("苏B\u202212345", "苏B12345"),  # bullet
        ("苏B\u30fb12345", "苏B12345"),  # katakana middle dot
        ("苏B.12345", "苏B12345"),
        ("苏B_12345", "苏B12345"),
        ("苏B\uff0d12345", "苏B12345"),  # full-width hyphen folds to a separator
        ("苏B\uff0e12345", "苏B12345"),  # full-width full stop
        ("苏B\uff3f12345", "苏B12345"),  # full-width underscore
        (" 苏\tB 1 2\n345 ", "苏B12345"),
        ("苏a·d 1234-5", "苏AD12345"),
        ("", ""),
    ],
)
def test_clean_plate(raw: str, cleaned: str) -> None:
    assert clean_plate(raw) == cleaned


@given(st.text())
def test_clean_plate_is_idempotent(raw: str) -> None:
    once = clean_plate(raw)
    assert clean_plate(once) == once


@given(st.text())
def test_clean_plate_leaves_no_separator_full_width_or_lower_ascii(raw: str) -> None:
    cleaned = clean_plate(raw)
    assert not any(c in " -\u00b7\u2022\u30fb._" or c.isspace() for c in cleaned)
    assert not any(0xFF01 <= ord(c) <= 0xFF5E or c == "\u3000" for c in cleaned)
    assert not any("a" <= c <= "z" for c in cleaned)


# is_well_formed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plate",
    [
        "苏B12345",
        "京AABCDE",  # letters in the serial
        "琼Z9Y8X7",
        "粤O12345",  # police: O in second place
        "苏I12345",  # second place is any letter A-Z
        "苏AD12345",  # new energy, D first
        "苏AF12345",  # new energy, F first
        "苏A12345D",  # new energy, D last
        "苏A12345F",  # new energy, F last
        "苏AD1234F",
        "苏A1234学",
        "苏A1234警",
        "苏A1234挂",
        "粤Z1234港",
        "粤Z1234澳",
        "沪A1234领",
        "使014578",
        "苏AD1234",  # 7 characters: an ordinary plate whose serial starts with D
    ],
)
def test_well_formed(plate: str) -> None:
    assert is_well_formed(plate)


@pytest.mark.parametrize("province", list(PROVINCES))
def test_every_province_is_accepted(province: str) -> None:
    assert is_well_formed(f"{province}A12345")


def test_there_are_31_provinces() -> None:
    assert len(set(PROVINCES)) == 31


@pytest.mark.parametrize(
    "plate",
    [
        "",
        "苏B1234",  # 6 characters
        "苏B123456",  # 8 characters without D or F
        "苏A12D345",  # 8 characters, D in the middle only
        "苏B123456D",  # 9 characters
        "苏B1234I",  # I in the serial
        "苏B1234O",  # O in the serial
        "苏BO2345",  # O in the serial, first position
        "苏AD1234O",  # new energy with O
        "苏AI12345",  # I in a new-energy serial
        "台A12345",  # not one of the 31 provinces
        "港A12345",
        "AB12345",
        "苏112345",  # second place must be a letter
        "苏b12345",  # not cleaned
        "苏B12345\n",
        "苏A123学5",  # suffix not last
        "苏A12345学",  # suffix plate of 8
        "苏A123学",  # suffix plate of 6
        "苏A1234使",  # 使 never ends a plate
        "苏AD1234学",
        "学A12345",
        "使01457",  # embassy of 6
        "使0145789",  # embassy of 8
        "使A14578",  # embassy serial is digits only
        "苏使12345",
        "苏B1234\uff15",  # full-width digit (not cleaned)
    ],
)
def test_not_well_formed(plate: str) -> None:
    assert not is_well_formed(plate)


# readable_plate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cleaned", "readable"),
    [
        ("苏B12345", "苏B12345"),
        ("粤O12345", "粤O12345"),  # O in second place is left alone
        ("苏B1234O", "苏B12340"),
        ("苏BI2345", "苏B12345"),
        ("苏BIOIO5", "苏B10105"),
        ("粤O1234O", "粤O12340"),  # only the serial O is repaired
        ("苏AD1234O", "苏AD12340"),
        ("苏A12I4学", "苏A1214学"),
        ("使O14578", "使014578"),  # embassy serial starts right after 使
        ("苏AD1234I", "苏AD12341"),
    ],
)
def test_readable_plate(cleaned: str, readable: str) -> None:
    assert readable_plate(cleaned) == readable


@pytest.mark.parametrize(
    "cleaned",
    [
        "",
        "苏B1234",
        "苏1O2345",  # second place is not repaired into a letter, nor the digit into one
        "苏B123456",
        "台A1234O",
        "苏B1234X学",
        "苏BO234",
        "UNKNOWN",
    ],
)
def test_unreadable_plate(cleaned: str) -> None:
    assert readable_plate(cleaned) is None


@given(st.text(alphabet=PROVINCES[:3] + "ABDIOF0123学使", max_size=9))
def test_readable_plate_is_none_or_well_formed(cleaned: str) -> None:
    readable = readable_plate(cleaned)
    assert readable is None or is_well_formed(readable)


# confusion_key -------------------------------------------------------------------------


def test_domain_example_shares_a_key() -> None:
    assert confusion_key("苏B1234O") == confusion_key("苏B12340")


@pytest.mark.parametrize("cls", CONFUSION_CLASSES)
def test_each_confusion_class_shares_a_key(cls: str) -> None:
    keys = {confusion_key(f"苏B123{c}5") for c in cls}
    assert len(keys) == 1


@pytest.mark.parametrize(("a", "b"), [("0", "1"), ("8", "6"), ("A", "4"), ("B", "3"), ("Z", "7")])
def test_different_characters_have_different_keys(a: str, b: str) -> None:
    assert confusion_key(f"苏B123{a}5") != confusion_key(f"苏B123{b}5")


def test_key_keeps_province_and_second_letter() -> None:
    assert confusion_key("粤O12345").startswith("粤O")
    assert confusion_key("苏B00000").startswith("苏B")
    assert confusion_key("苏B12345") != confusion_key("苏812345")
    assert confusion_key("苏Q12345") != confusion_key("苏012345")


def test_key_of_new_energy_and_suffix_plates() -> None:
    assert confusion_key("苏AD12345") == confusion_key("苏A012345")
    assert confusion_key("苏ADZSGB") == "苏A02568"
    assert confusion_key("苏A1234学") == "苏A1234学"


plates = st.builds(
    lambda province, letter, serial: province + letter + serial,
    st.sampled_from(PROVINCES),
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    st.text(alphabet=SERIAL_CHARS + "IO学", min_size=4, max_size=6),
)


@given(plates)
def test_confusion_key_is_idempotent(plate: str) -> None:
    key = confusion_key(plate)
    assert confusion_key(key) == key


@given(plates, st.data())
def test_confusable_substitutions_share_a_key(plate: str, data: st.DataObject) -> None:
    confused = list(plate)
    for i in range(2, len(plate)):
        cls = next((c for c in CONFUSION_CLASSES if plate[i] in c), None)
        if cls is not None:
            confused[i] = data.draw(st.sampled_from(cls))
    assert confusion_key("".join(confused)) == confusion_key(plate)


# decide_match --------------------------------------------------------------------------


def test_exact_match_wins() -> None:
    assert decide_match("苏B12345", True, []) == ("exact", "苏B12345")
    assert decide_match("苏B12345", True, ["苏B1234S", "苏812345"]) == ("exact", "苏B12345")


def test_fuzzy_with_one_candidate() -> None:
    assert decide_match("苏B1234O", False, ["苏B12340"]) == ("fuzzy", "苏B12340")
    assert decide_match("苏B8Z5G0", False, ["苏BB2S6D"]) == ("fuzzy", "苏BB2S6D")


def test_no_candidate_is_none() -> None:
    assert decide_match("苏B12345", False, []) == ("none", None)


def test_two_candidates_are_ambiguous() -> None:
    assert decide_match("苏B1234O", False, ["苏B12340", "苏B1234D"]) == ("none", None)


def test_candidates_with_another_key_are_ignored() -> None:
    assert decide_match("苏B1234O", False, ["苏B12340", "苏B99999"]) == ("fuzzy", "苏B12340")
    assert decide_match("苏B1234O", False, ["苏A12340"]) == ("none", None)


# decide_identity -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cleaned", "plate", "known", "identity"),
    [
        ("苏B12340", "苏B12340", {"苏B12340": True}, ("exact", "苏B12340")),
        ("苏B12340", "苏B12340", {"苏B12340": True, "苏B1234D": True}, ("exact", "苏B12340")),  # exact + fuzzy
        ("苏B1234O", "苏B12340", {"苏B12340": True}, ("fuzzy", "苏B12340")),  # one candidate
        ("苏B1234O", "苏B12340", {"苏B12340": True, "苏B1234D": True}, ("none", None)),  # two: nobody's
        ("苏B12340", "苏B12340", {"苏B12340": False, "苏B1234D": True}, ("fuzzy", "苏B1234D")),
        ("苏B12340", "苏B12340", {"苏B12340": False, "苏B1234D": True, "苏B1234Q": True}, ("none", None)),
        ("苏B12340", "苏B12340", {"苏B12340": False}, ("none", "苏B12340")),  # its provisional identity
        ("苏B1234O", "苏B12340", {}, ("none", "苏B12340")),  # a new provisional identity
    ],
)
def test_decide_identity(cleaned: str, plate: str, known: dict[str, bool], identity: tuple) -> None:
    assert decide_identity(cleaned, plate, known) == identity


_TWINS = ["苏B12340", "苏B1234O", "苏B1234D", "苏B1234Q", "苏B1Z340", "苏BI2340"]


@given(
    st.sampled_from(_TWINS),
    st.dictionaries(st.sampled_from([p for p in _TWINS if is_well_formed(p)]), st.booleans()),
)
def test_a_read_lands_on_a_registered_vehicle_only_when_one_fits(cleaned: str, known: dict[str, bool]) -> None:
    plate = readable_plate(cleaned)
    assert plate is not None
    kind, target = decide_identity(cleaned, plate, known)
    registered = [p for p, r in known.items() if r]
    if target is not None and known.get(target):
        assert kind == "exact" and target == cleaned or kind == "fuzzy" and registered == [target]
    if len(registered) >= 2 and not known.get(cleaned):
        assert target is None  # ambiguous
    if target is not None and not known.get(target, False):
        assert target == plate and not registered  # its own provisional identity


# mask_plate ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plate", "masked"),
    [
        ("苏B12345", "苏B****5"),
        ("苏AD12345", "苏A*****5"),
        ("苏A1234学", "苏A****学"),
        ("使014578", "使0****8"),
        ("苏B12", "苏B*2"),
        ("苏B1", "***"),
        ("苏", "*"),
        ("", ""),
    ],
)
def test_mask_plate(plate: str, masked: str) -> None:
    assert mask_plate(plate) == masked


@given(st.text(min_size=4))
def test_mask_keeps_length_and_ends(plate: str) -> None:
    masked = mask_plate(plate)
    assert len(masked) == len(plate)
    assert masked[:2] == plate[:2] and masked[-1] == plate[-1]
    assert set(masked[2:-1]) <= {"*"}


# fits_color ----------------------------------------------------------------------------

ALL_COLORS = ("blue", "yellow", "green", "yellow_green", "white", "black")


@pytest.mark.parametrize(
    ("plate", "allowed"),
    [
        ("苏AD12345", {"green", "yellow_green"}),  # new energy, D first
        ("苏A12345F", {"green", "yellow_green"}),  # new energy, F last
        ("苏A1234警", {"white"}),
        ("粤O1234警", {"white"}),  # O as the issuing letter
        ("使123456", {"black"}),
        ("苏A1234领", {"black"}),
        ("苏B12345", {"blue", "yellow", "white", "black"}),
        ("粤O12345", {"blue", "yellow", "white", "black"}),
        ("苏A1234学", {"blue", "yellow", "white", "black"}),  # DOMAIN.md is silent: permissive
        ("苏A1234挂", {"blue", "yellow", "white", "black"}),
        ("粤Z1234港", {"blue", "yellow", "white", "black"}),
    ],
)
def test_fits_color_table(plate: str, allowed: set[str]) -> None:
    assert is_well_formed(plate)
    assert {c for c in ALL_COLORS if fits_color(plate, c)} == allowed
