"""Facts read out of a character's words, for continuity checks: what colour each garment is, how old they are.

Small lexicons (English, Chinese, Russian, Italian, Korean) cover the words a storyboard's description and
wardrobe use; a garment with no colour near it, or words outside them, give no fact rather than a guess.
"""
from __future__ import annotations

import re

# colour family → the words that name it; a word ending in "-" is a stem (Russian and Italian endings vary), and
# non-Latin words match as prefixes (Russian) or anywhere in a CJK run
COLOURS = {
    "red": ("red", "crimson", "scarlet", "红", "赤", "красн", "алый", "алая", "алое", "ross-", "빨간", "붉은"),
    "blue": ("blue", "navy", "azure", "蓝", "藍", "син", "голуб", "blu-", "azzurr-", "파란", "푸른"),
    "green": ("green", "emerald", "绿", "綠", "зелён", "зелен", "verd-", "초록", "녹색"),
    "yellow": ("yellow", "golden-yellow", "黄", "жёлт", "желт", "giall-", "노란"),
    "black": ("black", "黑", "чёрн", "черн", "ner-", "검은", "까만"),
    "white": ("white", "白", "бел", "bianc-", "흰", "하얀"),
    "grey": ("grey", "gray", "灰", "сер", "grigi-", "회색"),
    "purple": ("purple", "violet", "紫", "фиолет", "лилов", "viola-", "보라"),
    "pink": ("pink", "粉", "розов", "rosa-", "분홍"),
    "orange": ("orange", "橙", "оранж", "arancion-", "주황"),
    "brown": ("brown", "棕", "褐", "коричн", "marron-", "갈색"),
}
GARMENTS = {
    "coat": ("coat", "overcoat", "大衣", "外套", "пальто", "cappott-", "코트"),
    "jacket": ("jacket", "夹克", "куртк", "giacc-", "재킷"),
    "scarf": ("scarf", "围巾", "шарф", "sciarp-", "목도리", "스카프"),
    "hat": ("hat", "cap", "帽", "шапк", "шляп", "кепк", "cappell-", "모자"),
    "dress": ("dress", "gown", "裙", "плать", "vestit-", "드레스", "원피스"),
    "shirt": ("shirt", "blouse", "衬衫", "рубаш", "рубах", "блуз", "camici-", "셔츠"),
    "boots": ("boots", "boot", "靴", "сапог", "ботин", "stival-", "부츠"),
    "cloak": ("cloak", "cape", "斗篷", "плащ", "накидк", "mantell-", "망토"),
    "apron": ("apron", "围裙", "фартук", "передник", "grembiul-", "앞치마"),
    "sweater": ("sweater", "jumper", "毛衣", "свитер", "maglion-", "스웨터"),
    "trousers": ("trousers", "pants", "裤", "брюк", "штан", "pantalon-", "바지"),
    "gloves": ("gloves", "glove", "手套", "перчат", "guant-", "장갑"),
    "uniform": ("uniform", "制服", "форм", "divis-", "제복"),
}
# an age word → its stage of life
AGE_WORDS = {
    "child": ("child", "kid", "little girl", "little boy", "孩子", "小女孩", "小男孩", "儿童", "ребён", "ребен", "девочк",
              "мальчик", "bambin-", "아이", "소녀", "소년"),
    "teen": ("teen", "teenage", "adolescent", "少年", "少女", "подрост", "adolescent", "십대"),
    "adult": ("adult", "grown", "成人", "взросл", "adult", "어른"),
    "old": ("old man", "old woman", "elderly", "aged", "grandmother", "grandfather", "老人", "老奶奶", "老爷爷", "стар",
            "бабушк", "дедушк", "anzian-", "vecchi-", "노인", "할머니", "할아버지"),
}
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_CLAUSES = re.compile(r"[,;.!?，。；、！？\n]|\band\b|\bwith\b|\bи\b|\be\b|\bcon\b|\bс\b")
NEAR = 4  # words (or CJK characters) a colour may stand from its garment


def _find(words: dict[str, tuple[str, ...]], token: str) -> str | None:
    token = token.lower()
    for family, names in words.items():
        for name in names:
            if _CJK.search(name):
                if name in token:
                    return family
            elif name.endswith("-") or not name.isascii():
                if token.startswith(name.rstrip("-")):
                    return family
            elif token in (name, name + "s"):
                return family
    return None


def _tokens(clause: str) -> list[str]:
    """Words; a run of CJK characters is split into its characters (and kept whole, for two-character words)."""
    out = []
    for word in re.findall(r"[\w'-]+", clause):
        if _CJK.search(word) and len(word) > 1:
            out += [word[i:i + 2] if i + 1 < len(word) else word[i] for i in range(len(word))]
        else:
            out.append(word)
    return out


def garment_colours(text: str | None) -> dict[str, str]:
    """``{"coat": "red", "scarf": "yellow"}`` from ``"a red wool coat and a yellow scarf"``: each garment with the
    nearest colour before it in its clause (else right after it, as Italian and Korean phrasing put it)."""
    found: dict[str, str] = {}
    for clause in _CLAUSES.split(text or ""):
        tokens = _tokens(clause)
        for i, token in enumerate(tokens):
            garment = _find(GARMENTS, token)
            if garment is None or garment in found:
                continue
            before = [_find(COLOURS, t) for t in reversed(tokens[max(0, i - NEAR):i])]
            after = [_find(COLOURS, t) for t in tokens[i + 1:i + 1 + 2]]
            colour = next((c for c in before + after if c), None)
            if colour:
                found[garment] = colour
    return found


def age_stage(age) -> str | None:
    """A stage of life (child, teen, adult, old) from a number of years or words."""
    if isinstance(age, bool) or age is None:
        return None
    if isinstance(age, (int, float)):
        return "child" if age < 13 else "teen" if age < 20 else "adult" if age < 60 else "old"
    text = str(age).lower()
    number = re.search(r"\d+", text)
    if number:
        return age_stage(int(number.group()))
    years = re.search(r"([a-z]+)[- ]years?[- ]old", text)
    if years and years.group(1) in _NUMBER_WORDS:
        return age_stage(_NUMBER_WORDS[years.group(1)])
    for stage, words in AGE_WORDS.items():
        if any(w in text for w in words):
            return stage
    return "old" if re.search(r"\bold\b", text) else None


_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
                                                      "seventy": 70, "eighty": 80, "ninety": 90}
