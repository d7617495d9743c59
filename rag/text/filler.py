"""Recognise agent filler: turns that hold the customer's place but answer nothing."""

from __future__ import annotations

import re

from rag.text.markers import ENDEARMENT, GREETINGS_ZH, strip_image_markers

_FILLER_PHRASES = [
    *GREETINGS_ZH, ENDEARMENT, r"麻烦(您)?稍等(一下|下)?", r"请(您)?稍等(一下|下)?", r"稍等(一下|下)?",
    r"好的", r"嗯嗯", r"嗯", r"好", r"收到", r"不客气(的)?", r"客气了", r"谢谢", r"感谢",
    r"这边(帮您|为您|给您)?(确认|看|查看|核实|处理|排查|反馈|申请|咨询)(一)?下", r"我(帮您|这边)?(确认|看|查看|核实)(一)?下",
    r"(这边)?(帮您|为您)?手动介入(下)?(处理)?(下)?", r"(抱歉)?(让您)?久等了", r"在的", r"在呢", r"请问还有其他问题吗",
    r"还有其他(可以帮您的)?问题吗", r"是的", r"对的", r"okk?", r"OK",
]
_FILLER = re.compile("|".join(f"(?:{p})" for p in sorted(_FILLER_PHRASES, key=len, reverse=True)))
_NOISE = re.compile(r"[\s，。,.!！?？~～、；;:：…]+")


def is_filler(text: str) -> bool:
    """True when nothing but greetings, 'please wait' phrases, acknowledgements and images remain."""
    rest = _FILLER.sub("", strip_image_markers(text))
    return not _NOISE.sub("", rest)
