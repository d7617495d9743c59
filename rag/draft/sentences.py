"""Past answers as sentences and steps, each judged reusable or tied to the customer it was written for.

A past agent answer mixes knowledge that holds for everyone (steps, console paths, doc links, limits
and prices) with facts of that one conversation (their numbers, times, files, statuses, questions put
to them). The offline drafter keeps only the first kind. What counts as "the same for everyone" is
judged against the other retrieved answers: a number, an id-like token or a link that other cases'
agents also wrote is team knowledge; one that only this conversation holds is that customer's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence
from urllib.parse import urlsplit

from rag.text.markers import ANSWER_GREETING, POLITE_GREETING, REDACTION_WORD, strip_image_markers
from rag.text.filler import is_filler
from rag.text.identifiers import find_identifiers
from rag.text.links import clean_link, is_qiniu_host, separate_links
from rag.text.normalise import normalise

_URL = re.compile(r"https?://[\x21-\x7e]+")
# "应该是persistentNotifyUrlhttps://…", "DV限免https://…": the corpus glues links to the word before them; a draft
# sets them apart so the agent and the customer see where the link starts.
_LINK_GLUED_AFTER = re.compile(r"(?<=[A-Za-z0-9\u4e00-\u9fff])(?=https?://)")
_LEADING_FILLER = re.compile(
    r"^\s*((麻烦|请)?(您)?稍等(一下|下)?|嗯嗯|好的|收到|是的|对的|抱歉让您久等了|久等了|不好意思|"
    # a check back that leads into the answer (「您是指需要这个吗财务对外 API 文档：…」): the answer is the reusable part
    r"(您|你)是(指|说)[^，,。？?！!\n]{0,16}?(吗|么|呢))[，,。？?！!\s]*"
)
# Sentence ends outside links: full-width marks always, ASCII ! and ? only when followed by CJK or end.
_SENTENCE_END = re.compile(r"(?<=[。！？])|(?<=[!?])(?=[\u4e00-\u9fff\s]|$)")
# "步骤如下1.免费证书申请…2.补全信息" → one step per piece
_GLUED_STEP = re.compile(r"(?<=[\u4e00-\u9fff：:\s])\s*(?=\d{1,2}[.、][\u4e00-\u9fffA-Za-z])")
# Two agent messages the export ran together (「将资源迁移到新空间的您好，生命周期规则…」): the first ends there, and the
# greeting opens the next sentence (joined back without a stop, the two read as one: 「新空间的生命周期规则」).
_GLUED_GREETING = re.compile(rf"(?<=[\u4e00-\u9fffA-Za-z0-9])(?={POLITE_GREETING}[，,])")
# ... and where a sentence's closing word runs into the next one's opening (「重新一键升级 https 即可您可以在 [域名管理] 中…」,
# the README's sample answer): 「即可」 never goes on with 「您可以」.
_GLUED_SENTENCE = re.compile(r"(?:(?<=即可)|(?<=就可以了)|(?<=就行了)|(?<=就好了))(?=(?:您|你)(?:可以|需要|也可以|这边|先|在))")
# A question, with or without its mark: agents type 「列举的文件数量多少」 and mean 「多少？」.
_QUESTION = re.compile(r"[？?]\s*$|(吗|呢|么)[。.]?\s*$|(多少|几个|几次|哪里|哪儿|什么|有没有|是不是)[。.]?\s*$")
# A clause that asks that customer something ("哪个空间，哪个文件呢，这边查询确认下"): dropped with its sentence's
# other clauses kept, when they say something on their own.
_ASKS_THEM = re.compile(r"(吗|呢|么)[，,、。.；;]?\s*$|(麻烦|方便|请)(您)?(提供|发|告知|给|截图)|哪个|哪些|是否|"
                        r"(您|你)(这边|们)?是(如何|怎么|什么时候|在哪|哪里)|请问|"
                        r"(截图|链接|报错)?(发|给|提供)(一)?下(给我们|这边|我们)?[，,。]?\s*$|截图(发|给)|可以截图")
# 「是否」 after a verb of checking is part of a statement (「走您自己的服务器进行判断鉴权是否通过」, 「检查一下是否开启了防盗链」),
# not a question put to that customer.
_CHECKS_WHETHER = re.compile(r"(判断|检查|检测|验证|校验|确认|决定|查看|看一?下)[^，,。；;？?]{0,12}是否")
_STAFF_CHECKS = re.compile(r"帮(您|你)|这边|我们")


def _asks_them(clause: str) -> bool:
    # staff checking for that customer (「这边先帮您检查下视频链接是否正常」) is their case, not a statement for anyone
    statement = clause if _STAFF_CHECKS.search(clause) else _CHECKS_WHETHER.sub("", clause)
    return bool(_ASKS_THEM.search(statement))


# About the other customer's own situation: their files, orders, screenshots, what staff saw or did for them.
_THEIR_CONTEXT = re.compile(
    # what staff observed in that customer's account, file or site
    r"这边(看|查)(您|你们|到|了)|这边(核实|测试|排查|确认)(了|到|过)|核实(到|了|下来)|经(过)?(核实|排查|查询)|测试(了)?这个|"
    r"看了下|看(了)?您(的|这边)|目前看|现在看|看记录|(没有|没|并没有)(查看到|查到|看到)|这边(再)?(看|查看|查)(一)?下|"
    r"(我们|这边)(这边)?(请求|测试|访问)(了)?(您|你们)|(是)?没有问题的|是正常(的|进行)|(都|是)对的|这个这边|"
    r"您的(域名|空间|账号)(配置|设置)(的|了)|我们代理测试|这边(同步|反馈|提交|转)给|(您|你们)的[\u4e00-\u9fff]{1,4}这个|"
    # staff's handling of that customer's request (「这边需要记录下，后端专员需要根据信息评估开通」)
    r"(这边|我们)(需要)?(记录|登记)(一)?下|专员(需要|会)|评估开通|"
    # the state staff saw of that customer's resource (「这边看实例目前处于运行中的状态的」)
    r"这边(看|查)[^，,。！？!?]{0,8}(目前|现在|处于|状态)|处于[^，,。！？!?]{0,8}(的)?状态的?[。！!]?\s*$|"
    # the state of that customer's request
    r"已(经)?(为您|帮您|给您|处理|下发|到账|解冻|恢复|修复|签发|更新|删除|关闭|开通|退款|退票|提交|反馈|同步|催|完成|可以了|好了)|"
    r"(?<!您)这边(已经|已|重新)|这边(帮您|为您|给您)(处理|操作|催|反馈|申请|提交|同步|查|人工|确认|核实|看)|处理(好|完成|完毕)|"
    r"正在(帮您|为您|下发|修)|预计(还需要|今天|明天)|您(再)?(确认|看|试|刷新)(一)?下(呢|吧|哈)?[。！!]?$|"
    # that customer's own objects and days
    r"这个(文件|订单|链接|任务|报错)|该(文件|订单|任务)|这两个|上面(的|两个)|你们(的|这个)(域名|文件|空间|账号|订单|网站)|"
    r"您的(域名|文件|账号|订单|空间|网站|任务|证书)(是|已|目前|现在|没有|不是)|您这边(目前|现在)|如图|图中|图片中|"
    r"今天|昨天|明天|刚刚|刚才|节后|节假日|"
    # that customer's problem reported fixed (「top数据可以了哈」), not an instruction (「刷新一下就可以了」)
    r"(?<![就即便也可])(可以了|好了|正常了|恢复了)(哈|哦|啦|呢)?[。！!～~]?\s*$"
)
# A blank form ("开票金额:发票抬头: 发票类型: …"): the customer fills it in, but a label followed by the
# next label reads like a labelled value to the guards, which would put a slot in it.
_BLANK_FIELD = re.compile(r"[\u4e00-\u9fff]{2,8}[:：]\s*(?=[\u4e00-\u9fff]{2,8}[:：]|$)")
_CORE = re.compile(r"[\s\W_]+")
# An agent quoting the customer's error back (「{"error":"The original image abnormal"}」) tells a new customer nothing.
_ERROR_ECHO = re.compile(r"\s*\{\s*\"error\"\s*:\s*\"[^\"]*\"\s*\}\s*[。.]?\s*$")
# A step's number at the start of a piece (「1.」「2、」).
STEP_NUMBER = re.compile(r"^(\d{1,2})[.、]\s*")
_TIME = re.compile(r"(?<!\d)\d{1,2}:\d{2}(:\d{2})?(?!\d)|\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}")
# Tokens whose value might be the customer's: numbers of two digits and more, and ASCII words
# holding a digit, dot, hyphen, underscore or @ (ids, hosts, bucket names, versions, emails).
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)*%?(?!\w)", re.A)
_ASCII_TOKEN = re.compile(r"(?<![\w.\-@])[A-Za-z0-9][\w.\-@*]*[A-Za-z0-9](?![\w\-@])", re.A)
_TOKEN_MARK = re.compile(r"[\d.\-_@*]")
# Numbers that are the team's knowledge whoever asks: durations, sizes, shares, rates, HTTP status codes.
_KNOWLEDGE_NUMBER = re.compile(
    r"\d+(?:\.\d+)?\s*(?:[-~～至到]\s*\d+(?:\.\d+)?\s*)?(?:天|个?小时|分钟|秒|周|个月|个?工作日|年|GB|MB|KB|TB|G\b|"
    r"M\b|K\b|%|倍|位|个字|字符|元/|次/|条/|/\s*(?:GB|G|月|天|次))|"
    r"[1-5]\d\d(?![\d.])(?!\s*[元条个次块])|"  # an HTTP status code
    r"\d+(?:\.\d+)+(?=\.[+x*]|\s*(?:版本|版|及以上|以上))", re.I)  # a version: 8.4.+, 7.13 版本
# A quantity with its unit glued on: 10min, 30s, 512kb, 2x.
_UNIT_VALUE = re.compile(r"\d+(?:\.\d+)?(?:min|mins|ms|s|sec|h|hr|hrs|kb|mb|gb|tb|k|m|g|w|x|px|fps|kbps|mbps)", re.I)
# A name and its generation: ios18, h264, mp4, http2, android10.
_NAMED_VERSION = re.compile(r"[A-Za-z]{1,8}\d{1,3}")
# A token the sentence names as a command or an API (「使用listbucket2命令」, 「qshell listbucket2 空间名」) is the
# tool's, the same for everyone: the qshell steps of deleting a bucket were dropped as that customer's values.
_NAMED_AS_COMMAND = re.compile(r"\s*(命令|指令|接口|方法|函数)")
_COMMAND_BEFORE = re.compile(r"(?:qshell|qrsctl|qfetch)\s+$", re.I)
_VERSION = re.compile(r"v?\d+\.\d+(?:\.[\dx+*]+)+|v\d+(?:\.\d+)?", re.I)
# "7.13.27.14.0" is "7.13.2" and "7.14.0" glued: five or more dotted groups are never one version.
_GLUED_VERSIONS = re.compile(r"(?<![\d.])(\d+\.\d+\.)(\d*)(\d)\.(\d+\.\d+)(?![\d.])")


@dataclass(frozen=True)
class Piece:
    """One sentence or step of a past answer."""

    text: str
    line: int  # the answer line it came from: pieces of one line are joined back without a break
    links: tuple[str, ...]  # clean links it holds
    index: int = 0  # position among the answer's pieces: a gap means a piece was dropped in between


def protect_links(text: str) -> list[tuple[str, bool]]:
    """``text`` as (part, is_link) runs, so sentence splitting never cuts inside a link."""
    runs: list[tuple[str, bool]] = []
    pos = 0
    for m in _URL.finditer(text):
        if m.start() > pos:
            runs.append((text[pos:m.start()], False))
        runs.append((m.group(0), True))
        pos = m.end()
    if pos < len(text):
        runs.append((text[pos:], False))
    return runs


def split_sentences(text: str) -> list[str]:
    """Sentences and list steps of one line; links stay whole."""
    pieces: list[str] = [""]
    for part, is_link in protect_links(text):
        if is_link:
            pieces[-1] += part
            continue
        chunks = re.split(f"{_SENTENCE_END.pattern}|{_GLUED_STEP.pattern}",
                          _GLUED_SENTENCE.sub("。", _GLUED_GREETING.sub("。", part)))
        pieces[-1] += chunks[0] or ""
        pieces.extend(c for c in chunks[1:] if c is not None)
    return [p.strip() for p in pieces if p and p.strip()]


def repair_versions(text: str) -> str:
    """Two versions glued into one token told apart; when the second opens a clause of its own (「使用7.13.2。7.14.0版本
    新功能影响的」), with a full stop: a space read as "either version is fine" (a support lead's read)."""
    def split(m: re.Match[str]) -> str:
        if not m.group(2):
            return m.group(0)
        after = text[m.end():]
        opens_clause = re.match(r"(版本)?[\u4e00-\u9fff]", after) and not re.match(r"版本\s*($|[，。,.；;！!？?])", after)
        return f"{m.group(1)}{m.group(2)}{'。' if opens_clause else ' '}{m.group(3)}.{m.group(4)}"

    return _GLUED_VERSIONS.sub(split, text)


def pieces_of(answer: str) -> list[Piece]:
    """A past answer as pieces: filler turns, greetings and image markers gone, links separated."""
    out: list[Piece] = []
    for line_no, turn in enumerate(answer.split("\n")):
        turn = strip_image_markers(turn).strip()
        if not turn or is_filler(turn):
            continue
        turn = _LEADING_FILLER.sub("", ANSWER_GREETING.sub("", turn)).strip()
        turn = repair_versions(_LINK_GLUED_AFTER.sub(" ", separate_links(turn)))
        for sentence in split_sentences(turn):
            sentence = _LEADING_FILLER.sub("", ANSWER_GREETING.sub("", sentence)).strip()
            if not sentence or is_filler(sentence):
                continue
            links = tuple(dict.fromkeys(c for c in (clean_link(r) for r in _URL.findall(sentence)) if c))
            out.append(Piece(sentence, line_no, links, len(out)))
    return out


def is_doc_link(url: str) -> bool:
    """A Qiniu page that reads the same for every customer: no query, no redaction, no customer path."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    return (
        is_qiniu_host(host) and not parts.query and not parts.fragment and "[" not in url
        and host != "api.qiniu.com" and not re.search(r"/[0-9a-f]{16,}|[?&=]", url)
    )


def tokens_of(text: str) -> set[str]:
    """Values in ``text`` that could be a customer's: identifiers (domains, emails, ids, IPs, bucket names),
    numbers that are not knowledge (a duration, a size, a share, an HTTP code, a version), and ASCII tokens that
    carry a digit. Code and header names (``isDnsOpen``, ``x-qnm-cache``, ``bitcode_strip``) are knowledge."""
    bare = _URL.sub(" ", text)
    # Qiniu's own hosts (portal.qiniu.com written without a scheme) are the same for everyone.
    found = {f.value.lower() for f in find_identifiers(normalise(bare))
             if f.kind != "name" and not is_qiniu_host(f.value.lower())}
    for m in _NUMBER.finditer(bare):
        value = m.group(0)
        if len(value.replace(".", "")) < 2 or _KNOWLEDGE_NUMBER.match(bare, m.start()) or _VERSION.fullmatch(value):
            continue
        found.add(value)
    found |= {m.group(0).lower() for m in _ASCII_TOKEN.finditer(bare)
              if re.search(r"\d", m.group(0)) and re.search(r"[A-Za-z]", m.group(0)) and len(m.group(0)) >= 3
              and not _VERSION.fullmatch(m.group(0)) and not _NAMED_VERSION.fullmatch(m.group(0))
              and not _UNIT_VALUE.fullmatch(m.group(0)) and not is_qiniu_host(m.group(0).lower())
              and not _NAMED_AS_COMMAND.match(bare, m.end()) and not _COMMAND_BEFORE.search(bare[:m.start()])}
    return found


@dataclass(frozen=True)
class Judge:
    """Decides which pieces carry reusable knowledge, given what the other retrieved answers say."""

    ticket: str
    others: tuple[str, ...]  # the other candidates' answers, lower-cased

    @classmethod
    def of(cls, ticket: str, other_answers: Iterable[str]) -> "Judge":
        return cls(ticket.lower(), tuple(a.lower() for a in other_answers))

    def shared(self, value: str) -> bool:
        """Written by another case's agent too, or by this customer: not a fact of that one conversation."""
        # "10" inside "100" or "2024" is not the same value: ASCII boundaries around it.
        pattern = re.compile(r"(?<![0-9A-Za-z])" + re.escape(value.lower()) + r"(?![0-9A-Za-z])")
        return bool(pattern.search(self.ticket)) or any(pattern.search(a) for a in self.others)

    def sentence_shared(self, piece: Piece) -> bool:
        """The whole sentence recurs in another answer (a team template): keep it as it is."""
        core = re.sub(r"\s+", "", _URL.sub("", piece.text)).lower()
        return len(core) >= 12 and any(core in re.sub(r"\s+", "", a) for a in self.others)

    def clause_ok(self, clause: str) -> bool:
        """A clause of a sentence holds for anyone: nothing of that customer's, no question to them."""
        bare = _URL.sub("", clause)
        return not (REDACTION_WORD in clause or _QUESTION.search(bare) or _asks_them(bare)
                    or _THEIR_CONTEXT.search(clause)
                    or _TIME.search(bare) or any(not self.shared(t) for t in tokens_of(clause)))

    def reason_to_drop(self, piece: Piece) -> str | None:
        text = piece.text
        if REDACTION_WORD in text:
            return "redaction token"
        bare = _URL.sub("", text)
        if _QUESTION.search(bare) or any(_asks_them(c) for c in CLAUSE_END.split(bare)):
            return "a question put to that customer"
        if any(not is_doc_link(link) and link.lower() not in self.ticket for link in piece.links):
            # Only Qiniu's own pages read the same for everyone; another site's link, even one agents
            # reuse, would be replaced by a slot downstream, and a slot must never stand where a link was.
            return FOREIGN_LINK
        if "【" in text:
            return "a slot"
        if len(_BLANK_FIELD.findall(text)) >= 3:
            return "a blank form"
        if _ERROR_ECHO.match(text):
            return "an error quoted back"
        if self.sentence_shared(piece):
            return None
        if _THEIR_CONTEXT.search(text):
            return "about that customer's case"
        if _TIME.search(_URL.sub("", text)):
            return "a date or time"
        content = _CORE.sub("", STEP_NUMBER.sub("", text))
        if not piece.links and (is_filler(content) or len(content) < 8 and not STEP_NUMBER.match(text)):
            return "too short to carry knowledge"
        foreign = sorted(t for t in tokens_of(text) if not self.shared(t))
        if foreign:
            return f"values only that conversation holds ({', '.join(foreign[:3])})"
        return None


FOREIGN_LINK = "a link that is not a Qiniu doc page"
# Reasons a sentence may still be kept without the clause that carries them; the rest must say something.
_PRUNABLE = ("redaction token", "about that customer's case", "values only that conversation holds", "a date or time",
             "a question put to that customer")
# Where a sentence splits into clauses (kept with the mark that ends each); the deferral's pointer splits the same way.
CLAUSE_END = re.compile(r"(?<=[，,；;])")
_SAYS_SOMETHING = re.compile(
    r"需要|可以|建议|请|设置|配置|开启|关闭|参考|登录|进入|点击|提交|申请|使用|修改|添加|删除|移除|去掉|去除|清除|"
    r"下载|上传|购买|更换|绑定|升级|更新|重启|执行|运行|调用|"
    r"不支持|无法|不能|没有|不会|即可|就可以|只能|必须|默认|会|是")
_THEIRS = re.compile(r"您的|你们的|您这个|你这个")
# Words that point at a link: without the link they point at nothing.
_POINTER = re.compile(r"(请)?(参考|参照|查看|按照|见|看)\s*(一下|下)?\s*(这个|如下|以下|该)?\s*"
                      r"(命令|链接|文档|方法|demo|教程|地址|说明)?\s*[：:]?", re.I)
# A link with the noun naming it (「命令文档 https://…」): a redacted link goes with its name.
_NAMED_LINK = re.compile(r"(?:(?:命令|接口|使用|安装|相关|参考)?(?:文档|教程|说明|链接|地址)\s*[：:]?\s*)?" + _URL.pattern)
_DANGLING = re.compile(r"(为|是|到|在|用|填|改成|设置为|修改为|参考|见|如下|：|:)[\s，,。]*$")


def prune(piece: Piece, judge: Judge) -> Piece | None:
    """``piece`` as it may be reused: whole, without the clauses that tie it to that customer, or not at all."""
    reason = judge.reason_to_drop(piece)
    if reason is None:
        return piece
    if reason == "redaction token" and _URL.search(piece.text):
        # The link was redacted (a path of that customer's): what the sentence says without it (and without the
        # words that pointed at it) may still hold, unless it is about them.
        bare = _POINTER.sub("", _NAMED_LINK.sub("", piece.text)).strip(" ，,：:\xa0")
        if bare == piece.text or REDACTION_WORD in bare or _THEIRS.search(bare) or not says_something(bare):
            return None
        return prune(Piece(bare, piece.line, (), piece.index), judge)
    if reason == FOREIGN_LINK:
        return _without_foreign_links(piece, judge)
    if reason.split(" (")[0] not in _PRUNABLE or piece.links:
        return None
    clauses = [c for c in CLAUSE_END.split(piece.text) if c.strip()]
    if len(clauses) < 2:
        return None
    kept = [c for c in clauses if judge.clause_ok(c)]
    if len(kept) == len(clauses) or not kept:
        return None
    text = _rejoined(kept, piece)
    if not says_something(text):
        return None
    return Piece(text, piece.line, piece.links, piece.index)


def _rejoined(clauses: Sequence[str], piece: Piece) -> str:
    """The clauses kept of ``piece``, as a sentence: no trailing comma, and its full stop if it had one."""
    text = "".join(clauses).rstrip("，,；; ")
    if not text.endswith(("。", "！", "!")) and piece.text.rstrip().endswith(("。", "！", "!")):
        text += "。"
    return text


def _without_foreign_links(piece: Piece, judge: Judge) -> Piece | None:
    """The sentence without the clauses that hold a link other than a Qiniu doc page (a store page with its query:
    「要买这个资源包才可以抵扣https://qmall…」): the rest of the answer still holds, and no slot stands where the
    link was, because the whole clause goes. What is left is judged as any sentence."""
    foreign = [link for link in piece.links if not is_doc_link(link) and link.lower() not in judge.ticket]
    clauses = [c for c in CLAUSE_END.split(piece.text) if c.strip()]
    kept = [c for c in clauses if not any(link in c for link in foreign)]
    if len(kept) == len(clauses) or not kept or any(all(link not in c for c in clauses) for link in foreign):
        return None  # a link cut across clauses (a comma inside it) cannot be taken out whole
    text = _rejoined(kept, piece)
    if not says_something(_URL.sub("", text)):
        return None
    return prune(Piece(text, piece.line, tuple(link for link in piece.links if link in text), piece.index), judge)


def says_something(text: str) -> bool:
    """What is left of a sentence still states or instructs something, and does not end in mid-air."""
    core = _CORE.sub("", STEP_NUMBER.sub("", text))
    return len(core) >= 10 and bool(_SAYS_SOMETHING.search(text)) and not _DANGLING.search(text)


def reusable(pieces: Sequence[Piece], judge: Judge) -> list[Piece]:
    return [kept for p in pieces if (kept := prune(p, judge)) is not None]


def join(pieces: Sequence[Piece]) -> str:
    """Pieces back into text: those of one answer line run on, a new line starts a new line."""
    lines: list[str] = []
    last: Piece | None = None
    for p in pieces:
        starts_step = bool(re.match(r"\d{1,2}[.、]", p.text))
        # A dropped piece in between leaves a seam: start a new line rather than fuse two sentences
        # (or a link and the next word) that were never next to each other.
        if lines and last is not None and p.line == last.line and p.index == last.index + 1 and not starts_step:
            lines[-1] += (" " if last.links and lines[-1].endswith(last.links[-1]) else "") + p.text
        else:
            lines.append(p.text)
        last = p
    return "\n".join(lines)
