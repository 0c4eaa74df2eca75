"""The pages' catalogue is complete and compiled: every message in the code and templates has
a Chinese translation in the committed .mo (a fresh clone needs no compile step)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.support import Translations

ROOT = Path(__file__).resolve().parents[2]


def test_every_page_message_has_a_compiled_chinese_translation():
    with open(ROOT / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(
            str(ROOT), method_map, options_map, keywords={"_": None, "gettext": None, "lazy_gettext": None})
    }
    assert "Black-smoke review" in found and "Keyboard shortcuts" in found
    catalogue = Translations.load(str(ROOT / "enforcement" / "translations"), ["zh_Hans_CN"])
    untranslated = sorted(m for m in found if catalogue.gettext(m) == m)
    assert untranslated == []
