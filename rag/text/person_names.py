"""Chinese personal names in running text, for de-identification (``rag.corpus.deidentify``).

A labelled name (``联系人：张伟``) is found by ``rag.text.identifiers``; this finds the unlabelled ones
("张伟反馈说证书过期了", "麻烦转告李经理"). jieba's part-of-speech tagger proposes names (tag ``nr``),
but alone it is too eager on this corpus: over the dataset's dialogues (already de-identified, so every
hit is wrong) it tags 谢谢, 明白, 白名单, 杜绝, 申请人 and splits 七牛云 into 七/牛云 – 61 hits in the
agents' turns, 74 in the customers' (``python eval/person_names.py``). So a proposal is kept only when
- it starts with a common surname (single or compound) and one or two Han characters follow;
- it is not a common dictionary word (jieba's own frequency), nor are its first two characters
  (申请人) or its two-character given part (白名单);
- its given part is not grammar (资源包才可以, 谢谢您) or a numeral or measure word (单帧);
- its surname does not finish a common word begun by the characters before it;
- it is not inside one of Qiniu's own words (七牛云, 融合CDN…), which the tagger's private
  dictionary knows as words.
A surname the tagger cut off on its own is joined to the name-tagged (or, if the surname was tagged a
name, rare) word after it (吴 / 海涛, 江 / 疏影); a two-character name to a one-character name after it
(姚明 / 杰).
A surname before a title (王经理, 李老师, 张工) is a name whatever the tagger says; only the surname is
returned there, so the title stays and the reply still reads naturally.

The tagger has its own dictionary instance (Qiniu's words added), built on first use, never at
import and never in jieba's shared default tokenizer that lexical retrieval uses.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, NamedTuple

from rag.text.markers import GREETINGS

# The most common Chinese surnames (the ~200 that cover nearly all of the population) and the
# compound ones still in use. Surnames that are also everyday words are here too (白, 包, 安, 明…):
# the dictionary filters below, not this list, keep 白名单 and 明白 out.
SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康"
    "施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗"
    "谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜"
    "冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 令狐 夏侯 端木 独孤 南宫 西门 轩辕 呼延".split()
)
# Qiniu's own words the stock dictionary lacks; the tagger otherwise reads 七牛云 as 七 + a name 牛云.
# The last three are this domain's words that it read as names in the corpus (连麦 in a subcategory,
# 安卓 and 麦克风 in customers' turns): added after that measurement, so the corpus's figure for them is
# not a held-out one.
OWN_WORDS = ("七牛", "七牛云", "七牛云存储", "融合CDN", "对象存储", "云主机", "智能多媒体", "低频存储", "归档存储",
             "连麦", "安卓", "麦克风")
# Titles written after a surname: the surname is a person's. 总 and 工 alone are also word starts
# (总量, 工单), so the characters that would make them one are excluded.
_LONG_TITLES = ("经理", "老师", "总监", "主管", "工程师", "律师", "医生", "师傅", "老板")
_TITLED = re.compile(r"(?:" + "|".join(sorted(COMPOUND_SURNAMES)) + r"|[\u4e00-\u9fff])(?="
                     + "|".join(_LONG_TITLES) + r"|总(?![是共计的数额量价部结体监裁])|工(?![单作程具资期时]))")
# A dictionary word this frequent is vocabulary (谢谢 1089, 明白 10875, 杜绝 593; jieba's dictionary
# also tags them nr). Names it knows are mostly rarer (王小雯 12, 李娜 438); 白雪 (1572) is missed.
COMMON_WORD_FREQ = 500
_NAME_TAGS = ("nr", "nrfg", "nrt")
RARE_WORD_FREQ = 20
# Characters that are grammar, never part of a given name: 资源包才可以 (才), 谢谢您 (您).
FUNCTION_CHARS = frozenset("才未也都就还又再很太更最已曾将被把让给向对从在是了的着过吗呢吧啊么呀您你我他她它们和与或及等个只这那")
_HAN = re.compile(r"[\u4e00-\u9fff]+")


class NameSpan(NamedTuple):
    start: int
    end: int
    value: str


@lru_cache(maxsize=1)
def _tagger() -> Any:
    import logging

    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    for w in OWN_WORDS:
        tokenizer.add_word(w, freq=100_000, tag="nz")
    return jieba.posseg.POSTokenizer(tokenizer)


def _surname_of(word: str) -> str:
    if word[:2] in COMPOUND_SURNAMES:
        return word[:2]
    return word[0] if word[0] in SURNAMES else ""


def _joins_word_before(text: str, start: int, surname: str, freq: dict[str, int]) -> bool:
    """True when the characters before ``start`` and the surname make one common dictionary word."""
    end = start + len(surname)
    return any(freq.get(text[start - k:end], 0) >= COMMON_WORD_FREQ for k in (1, 2, 3) if start - k >= 0)


def _name_like(word: str, surname: str, freq: dict[str, int], tags: dict[str, str]) -> bool:
    """False when ``word`` reads as vocabulary rather than surname + given name: a common word itself
    (谢谢 1089, 明白, 杜绝), its first two characters one (申请人: 申请), a given part that is grammar
    (资源包才, 谢谢您) or an everyday word (白名单: 名单)."""
    given = word[len(surname):]
    if not 1 <= len(given) <= 2 or any(c in FUNCTION_CHARS for c in given) or _TITLED.match(word):
        return False  # a titled surname (王经理) is found by _TITLED, keeping the title
    if freq.get(word, 0) >= COMMON_WORD_FREQ or (len(given) == 1 and tags.get(given, "") in ("m", "q")):
        return False  # a one-character given part that is a numeral or measure word: 单帧
    if len(surname) == 1 and len(given) == 2 and not _known_full_name(word, freq, tags):
        for part in (word[:2], given):
            if freq.get(part, 0) >= COMMON_WORD_FREQ and tags.get(part, "") not in _NAME_TAGS:
                return False
    return True


# Tags of everyday words: a given part tagged so is vocabulary even when the whole word is a dictionary name
# (白名单 is in jieba's dictionary as a name, 3; its 名单 is a noun).
_EVERYDAY_TAGS = frozenset({"n", "v", "vn", "a", "ad", "an", "d", "m", "q"})


def _known_full_name(word: str, freq: dict[str, int], tags: dict[str, str]) -> bool:
    """A three-character word the dictionary itself holds as a rare name (李建国 9, 王建军 5) whose given part
    is a proper word, not an everyday one (建国 3,083 "founding of the state", tagged ns): a person's name
    even though that given part is common (issue 24)."""
    given = word[1:]
    return (len(word) == 3 and tags.get(word, "") in _NAME_TAGS and 0 < freq.get(word, 0) < RARE_WORD_FREQ
            and tags.get(given, "") not in _EVERYDAY_TAGS)


def find_person_names(text: str) -> list[NameSpan]:
    """Spans of ``text`` that are a person's name (the whole name, or the surname before a title)."""
    tagger = _tagger()
    freq: dict[str, int] = tagger.tokenizer.FREQ
    tags: dict[str, str] = tagger.word_tag_tab
    words: list[tuple[int, str, str]] = []
    pos = 0
    for pair in tagger.cut(text):
        words.append((pos, pair.word, pair.flag))
        pos += len(pair.word)
    found: list[NameSpan] = []
    for i, (start, word, flag) in enumerate(words):
        if not _HAN.fullmatch(word):
            continue
        nxt = words[i + 1] if i + 1 < len(words) and _HAN.fullmatch(words[i + 1][1]) else None
        if word in SURNAMES or word in COMPOUND_SURNAMES:
            # The tagger often cuts a name as surname + given name (吴 / 海涛, 欧阳 / 娜娜); a surname it
            # tagged a name may be followed by a rare word (江 / 疏影).
            if nxt is None or not (nxt[2] in _NAME_TAGS or (flag in _NAME_TAGS and freq.get(nxt[1], 0) < RARE_WORD_FREQ)):
                continue
            candidate = word + nxt[1]
        elif flag in _NAME_TAGS:
            candidate = word
            if len(word) == 2 and nxt is not None and len(nxt[1]) == 1 and nxt[2] in _NAME_TAGS:
                candidate += nxt[1]  # 姚明 / 杰
        else:
            continue
        surname = _surname_of(candidate)
        if surname and _name_like(candidate, surname, freq, tags) and not _joins_word_before(text, start, surname, freq):
            found.append(NameSpan(start, start + len(candidate), candidate))
    for m in _TITLED.finditer(text):
        name = m.group(0)
        one_char_title = not text.startswith(_LONG_TITLES, m.end())
        if _surname_of(name) == name and not _joins_word_before(text, m.start(), name, freq) \
                and not (one_char_title and freq.get(text[m.start():m.end() + 1], 0) > 0):  # 施工, 高工 are words
            found.append(NameSpan(m.start(), m.end(), name))
    return found


# -- Latin-script names (issue 24: "Hans Müller" survived the export) ------------------------------------------
# The dataset holds no Latin-script name, so there is nothing to learn them from; a pair (or three) of
# capitalised words is taken for a name only with evidence: a cue before it (Dear, Mr, 联系人, 您好…), a title
# after it (先生, 女士), a letter outside ASCII (Müller, Søren), or a common given name first, and never when
# one of its words is product or technical vocabulary (Object Storage, Google Chrome, Visual Studio).
_UPPER = "A-ZÀ-ÖØ-Þ\u0100-\u017f"
_LOWER = "a-zß-öø-ÿ\u0100-\u017f"
_LATIN_WORD = rf"[{_UPPER}][{_LOWER}'’]+(?:-[{_UPPER}][{_LOWER}]+)?"
_PARTICLES = r"(?:von|van|de|der|den|da|di|du|del|le|la|ten|ter|dos|das)"
# A run of capitalised words, joined by spaces (and particles): split at vocabulary, each piece of two to four
# words is a candidate. One pass; each word is read once.
_LATIN_RUN = re.compile(rf"(?<![A-Za-z{_LOWER}{_UPPER}]){_LATIN_WORD}(?:(?:[ \t]+{_PARTICLES})*[ \t]+{_LATIN_WORD})+"
                        rf"(?![A-Za-z{_LOWER}{_UPPER}])")
_WORD_IN_RUN = re.compile(_LATIN_WORD)
# The dataset's greetings (rag.text.markers) are cues too: 您好 Hans Müller, Hello John Smith.
_CUE_BEFORE = re.compile(
    r"(?:\b(?:mr|mrs|ms|miss|dr|prof|dear|hey|herr|frau|monsieur|madame|sehr geehrter?|liebe[r]?|i am|i'm|"
    r"my name is|this is|name|contact|regards|thanks|cheers|from|signed|sincerely)\b|联系人|客户|用户|我是|我叫|"
    rf"尊敬的|致|姓名|负责人|同事|转告|此致|署名|签名|{'|'.join(map(re.escape, GREETINGS))})[\s,:：，.、]*$", re.I)
_TITLE_AFTER = re.compile(r"^[ \t]*(?:先生|女士|小姐|老师|经理|总监|同学|工程师)")
_GIVEN_NAMES = frozenset("""
adam adrian alan albert alex alexander alice alicia amanda amy andrea andreas andrew angela anna anne anton
ben benjamin bernd brian bruno carl carlos caroline charles chris christian christine christopher claire claudia
daniel david dennis diana dieter elena elizabeth emily emma eric erik eva fabian felix florian frank franz fritz
george gerhard grace hans hannah harry heinz helen helmut henry ian isabel jack jacob james jan jane jason jean
jennifer jens jessica jim joe johann johannes john jonas jonathan jose joseph juan julia julian jurgen karl
karen kate katharina kevin klaus kurt lars laura lena leon linda lisa louis lucas lukas luis marc marco maria
marie mark markus martin mary matthew matthias max maximilian michael michelle mike monika nicole niklas oliver
otto patrick paul peter petra philipp rachel ralf richard robert ryan sabine sam sandra sarah sebastian simon
sophie stefan stephan steven susan sven thomas tim tobias tom uwe ute victoria walter werner william wolfgang
""".split())
# Capitalised words that name products, companies, places or technical things, never a person here.
_VOCABULARY = frozenset("""
access secret key keys object storage cloud browser google chrome firefox safari edge microsoft windows server
visual studio code amazon apple android ios mac linux ubuntu centos debian red hat docker kubernetes let encrypt
qiniu kodo fusion pili dora portal developer console center centre error token bucket upload download domain
name service services support team customer customers user users admin account api sdk http https web site page
file files data image images video live stream cdn dns ssl tls certificate request response status network content
delivery origin region zone east west north south china beijing shanghai hong kong new york london paris tokyo
best regards thanks thank kind dear hello hi note please update version release beta free pro plus enterprise
java python node php ruby go swift kotlin react vue spring boot nginx apache tomcat mysql redis mongo oracle
github gitlab stack overflow wechat alipay taobao alibaba aliyun tencent baidu huawei xiaomi bytedance
monday tuesday wednesday thursday friday saturday sunday january february march april may june july august
september october november december
""".split())


def _vocabulary(word: str) -> bool:
    return word.lower().replace("’", "'").split("'")[0] in _VOCABULARY


def find_latin_names(text: str) -> list[NameSpan]:
    """Latin-script personal names in ``text`` (see above), as whole spans."""
    found = []
    for run in _LATIN_RUN.finditer(text):
        words = [(run.start() + w.start(), run.start() + w.end(), w.group(0)) for w in _WORD_IN_RUN.finditer(run.group(0))
                 if w.group(0)[0].isupper()]
        piece: list[tuple[int, int, str]] = []
        for item in words + [(0, 0, "")]:  # the sentinel closes the last piece
            if item[2] and not _vocabulary(item[2]) and len(piece) < 4:
                piece.append(item)
                continue
            if len(piece) >= 2:
                start, end = piece[0][0], piece[-1][1]
                names = [w for _, _, w in piece]
                evidence = (_CUE_BEFORE.search(text[max(0, start - 24):start]) or _TITLE_AFTER.match(text[end:])
                            or any(not w.isascii() for w in names) or names[0].lower() in _GIVEN_NAMES)
                if evidence:
                    found.append(NameSpan(start, end, text[start:end]))
            piece = [item] if item[2] and not _vocabulary(item[2]) else []
    return found
