"""One glossary: every zh_Hans translation names each operator's term by its one word.

The catalogues read are the compiled ones (``django.mo``), as a running site reads
them: the app's and the example shop's.
"""

from __future__ import annotations

import gettext
from pathlib import Path

import pytest
from django.utils import translation

from django_wxpay_profitsharing.glossary import TERMS, offences

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = [
    ROOT / "django_wxpay_profitsharing/locale/zh_Hans/LC_MESSAGES/django.mo",
    ROOT / "example_project/orders/locale/zh_Hans/LC_MESSAGES/django.mo",
]


def catalogue(path: Path) -> dict[str, str]:
    """msgid -> msgstr; a plural's first form stands for it."""
    with path.open("rb") as file:
        raw = gettext.GNUTranslations(file)._catalog  # type: ignore[attr-defined]
    entries: dict[str, str] = {}
    for key, text in raw.items():
        english = key[0] if isinstance(key, tuple) else key
        if isinstance(key, tuple) and key[1] != 0:
            continue
        entries[english.split("\x04")[-1]] = text
    return entries


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.parts[-5])
def test_every_translation_uses_the_glossarys_words(path):
    assert list(offences(catalogue(path))) == []


def test_a_clawback_called_a_return_is_caught():
    wrong = {
        "Submit clawbacks to WeChat Pay": "将回退单提交到微信支付",
        "%(count)d return failed.": "%(count)d 笔追回失败。",
        "Refund %(number)s": "回退 %(number)s",
        "sharing order": "分账订单",
    }
    found = list(offences(wrong))
    assert any("Submit clawbacks" in line and "without 追回" in line for line in found)
    assert any("return failed" in line and "calls the return 追回" in line for line in found)
    assert any("Refund %(number)s" in line and "calls the refund 回退" in line for line in found)
    assert any("分账订单" in line and "says 分账订单" in line for line in found)


def test_a_signals_receiver_is_not_a_sharing_receiver():
    assert list(offences({"last receiver error": "最近一次接收者错误"})) == []
    assert list(offences({"receiver": "接收者"})) != []


def test_each_term_has_its_own_chinese_word():
    with translation.override("zh-hans"):
        words = {key: str(term.label) for key, term in TERMS.items()}
        meanings = [str(term.meaning) for term in TERMS.values()]
    assert all(words[key] != key for key in words), words
    assert len(set(words.values())) == len(words)
    assert words["clawback"] == "追回单" and words["return"] == "分账回退"
    assert all(term.root in words[key] for key, term in TERMS.items())
    assert all(meaning.isascii() is False for meaning in meanings)


def test_the_glossary_page_is_in_the_nav():
    assert "glossary.md" in (ROOT / "mkdocs.yml").read_text("utf-8")
    page = (ROOT / "docs/glossary.md").read_text("utf-8")
    assert "| clawback | 追回单 |" in page and "| return | 分账回退 |" in page
