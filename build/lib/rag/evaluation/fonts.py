"""A font that can draw Chinese product names in plots, when the machine has one."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def chinese_font():
    from matplotlib import font_manager

    for name in ("Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "SimHei", "Droid Sans Fallback"):
        try:
            path = font_manager.findfont(font_manager.FontProperties(family=name), fallback_to_default=False)
        except ValueError:
            continue
        return font_manager.FontProperties(fname=path)
    return None
