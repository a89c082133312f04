"""Text as a voice should read it: numbers spelled out, abbreviations expanded, long lines in sentences.

Numbers use ``num2words`` (many languages); unknown languages fall back to English digits-as-words only
when the language is English, otherwise the digits are left for the engine's own reader.
"""
from __future__ import annotations

import re

_ABBREVIATIONS_EN = {
    "mr.": "mister", "mrs.": "missus", "ms.": "miz", "dr.": "doctor", "st.": "saint", "capt.": "captain",
    "lt.": "lieutenant", "sgt.": "sergeant", "prof.": "professor", "jr.": "junior", "sr.": "senior",
    "vs.": "versus", "etc.": "et cetera", "e.g.": "for example", "i.e.": "that is", "no.": "number",
}
_SYMBOLS_EN = {"&": " and ", "%": " percent", "+": " plus ", "=": " equals ", "@": " at "}
_NUMBER = re.compile(r"(?<![\w.])([$€£])?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(st|nd|rd|th)?(?![\w])")


def _language_code(language: str) -> str:
    return language.lower().replace("_", "-").split("-")[0]


def _number_words(match: re.Match, lang: str) -> str:
    from num2words import num2words

    currency, whole, fraction, ordinal = match.groups()
    value = int(whole.replace(",", ""))
    try:
        if ordinal:
            return num2words(value, lang=lang, to="ordinal")
        if currency:
            code = {"$": "USD", "€": "EUR", "£": "GBP"}[currency]
            amount = float(f"{value}.{fraction}") if fraction else value
            return num2words(amount, lang=lang, to="currency", currency=code)
        if fraction:
            return num2words(float(f"{value}.{fraction}"), lang=lang)
        if 1100 <= value <= 2099 and lang == "en" and not match.group(0).count(","):
            return num2words(value, lang=lang, to="year")
        return num2words(value, lang=lang)
    except (NotImplementedError, OverflowError, KeyError):
        return match.group(0)


def normalize_text(text: str, language: str = "en") -> str:
    """The line as words: numbers, currency, ordinals, symbols and (English) abbreviations spelled out."""
    lang = _language_code(language)
    out = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    out = out.replace("\u2014", ", ").replace("\u2013", ", ").replace("...", "…")
    if lang == "en":
        for short, long in _ABBREVIATIONS_EN.items():
            out = re.sub(rf"(?i)(?<![\w.]){re.escape(short)}", long, out)
        for symbol, word in _SYMBOLS_EN.items():
            out = out.replace(symbol, word)
    try:
        import num2words  # noqa: F401

        out = _NUMBER.sub(lambda m: _number_words(m, lang), out)
    except ImportError:
        pass
    return re.sub(r"\s+", " ", out).strip()


def split_sentences(text: str, max_chars: int = 220) -> list[str]:
    """Sentences, and sentences longer than ``max_chars`` cut at commas or spaces, so engines never choke."""
    pieces = [p.strip() for p in re.split(r"(?<=[.!?…])\s+", text) if p.strip()]
    out: list[str] = []
    for piece in pieces:
        while len(piece) > max_chars:
            cut = max(piece.rfind(", ", 0, max_chars), piece.rfind("; ", 0, max_chars))
            if cut <= 0:
                cut = piece.rfind(" ", 0, max_chars)
            if cut <= 0:
                cut = max_chars
            out.append(piece[:cut + 1].strip())
            piece = piece[cut + 1:].strip()
        if piece:
            out.append(piece)
    return out


def has_speech(text: str) -> bool:
    return bool(re.search(r"\w", text))
