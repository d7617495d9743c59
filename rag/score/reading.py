"""The grader's own reading of a draft: what a reader's browser, mail client or phone would make of it.

The guards read drafts through ``rag/text/normalise.py``; grading with that same reading would hide
every miss of it from the score too, so this module shares no code with it (import-linter's ``grader``
contract) and is deliberately wider: it needs no span map and no suffix list, only to see what a
person would type back.

- NFKC (full width → ASCII), invisible characters out, Chinese sentence punctuation ends a link, and an
  ideographic full stop between ASCII letters is a dot;
- a written-out dot between two host labels is a dot: ``[.]``, ``(.)``, ``{.}``, ``[dot]``, `` dot ``,
  ``点``, ``·`` and other middle dots, and a dot with spaces around it, when letters follow (a
  top-level label); ``3点30`` stays text;
- a written-out ``@`` (``[at]``, ``(at)``, ``{at}``, ``[@]``) between an address's parts is ``@``;
  ``[:]`` and ``[://]`` after a scheme are ``:`` and ``://`` (``hxxp`` is read by the link patterns);
- seven or more single digits spaced apart are one number;
- a host with non-Latin labels before an ASCII top-level label (``七牛证书续期.com``) is written in
  punycode, as a browser sends it, unless Chinese text merely runs into an ASCII host
  (``域名是img.x.cn``: a label that mixes Han characters and ASCII letters).
"""

from __future__ import annotations

import re
import unicodedata

import idna

# Invisible characters an attacker slips into a host; Unicode's "other" categories, plus the fillers
# and selectors that render as nothing without being in them.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cs", "Co", "Cn", "Mn"})
_INVISIBLE_EXTRA = frozenset("\u180e\u3164\u115f\u1160\uffa0")
_IDEOGRAPHIC_DOT = re.compile(r"(?<=[A-Za-z0-9])[\u3002\uff61\uff0e](?=[A-Za-z0-9])")
# Chinese sentence punctuation ends a link even though NFKC would turn it into ASCII (，→ , ：→ :): the corpus
# writes "空间：https://…，域名：https://…". A full-width colon before two slashes is still a scheme's.
_CJK_STOPS = re.compile(r"[\uff0c\uff1b\uff01\uff1f\uff08\uff09\u3001\uff5e\u201c\u201d\u2018\u2019]|\uff1a(?![/\\\uff0f\uff3c]{2})")

_BRACKETED_DOT = r"\[\s?(?:\.|dot|点)\s?\]|\(\s?(?:\.|dot|点)\s?\)|\{\s?(?:\.|dot|点)\s?\}|<\s?(?:\.|dot)\s?>"
# Bracketed dots join any two labels (``203[.]0[.]113[.]9``); the looser forms only before letters.
_WRITTEN_DOT = re.compile(
    rf"(?<=[A-Za-z0-9\-])[ \t]{{0,2}}(?:{_BRACKETED_DOT})[ \t]{{0,2}}(?=[A-Za-z0-9])"
    r"|(?<=[A-Za-z0-9\-])(?:[ \t]+dot[ \t]+|[ \t]*[点·•・‧∙][ \t]*|[ \t]+\.[ \t]*|\.[ \t]+)(?=[A-Za-z]{2})",
    re.I)
_WRITTEN_AT = re.compile(r"(?<=[A-Za-z0-9._%+\-])[ \t]{0,2}(?:\[\s?(?:at|@)\s?\]|\(\s?(?:at|@)\s?\)|\{\s?(?:at|@)\s?\})[ \t]{0,2}"
                         r"(?=[A-Za-z0-9])", re.I)
_WRITTEN_COLON = re.compile(r"(?<=[A-Za-z])(?:\[:\]|\(:\)|\[://\]|\(://\))", re.I)
_SPACED_DIGITS = re.compile(r"(?<![\d.])\d(?:[ \t\-]{1,3}\d(?!\d)){6,}")
_NON_LATIN_HOST = re.compile(r"(?<![\w.\-])(?:[^\W_]|-){1,63}(?:\.(?:[^\W_]|-){1,63}){0,6}\.([A-Za-z]{2,24})(?![A-Za-z0-9\-])")
_HAN = re.compile(r"[\u3400-\u9fff]")
# Names after a dot that are files, not hosts (截图.zip is a file even though .zip is a top-level domain).
_FILE_NAMES = frozenset("zip mov md py sh pl rs ps js gz png jpg jpeg gif mp4 mp3 txt log csv json html htm pdf doc docx "
                        "xls xlsx apk ipa exe dmg".split())


def _as_punycode(m: re.Match[str]) -> str:
    host = m.group(0)
    if host.isascii() or m.group(1).lower() in _FILE_NAMES:
        return host
    if any(_HAN.search(label) and re.search(r"[A-Za-z0-9]", label) for label in host.split(".")):
        return host  # Chinese text run into an ASCII host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        return ".".join(p if p.isascii() else "xn--" + p.encode("punycode").decode("ascii") for p in host.lower().split("."))


def reading_form(text: str) -> str:
    """``text`` as a reader would type it back (see the module docstring)."""
    text = unicodedata.normalize("NFKC", _CJK_STOPS.sub(" ", text))
    text = "".join(ch for ch in text if ch in "\n\t" or not (
        unicodedata.category(ch) in _INVISIBLE_CATEGORIES or ch in _INVISIBLE_EXTRA or unicodedata.category(ch) == "Cc"))
    text = _IDEOGRAPHIC_DOT.sub(".", text)
    text = _WRITTEN_COLON.sub(lambda m: "://" if "//" in m.group(0) else ":", text)
    text = _WRITTEN_AT.sub("@", text)
    text = _WRITTEN_DOT.sub(".", text)
    text = _SPACED_DIGITS.sub(lambda m: re.sub(r"\D", "", m.group(0)), text)
    return _NON_LATIN_HOST.sub(_as_punycode, text)
