"""The product areas a ticket can be about, each with the documentation page a deferral points to.

A deferral for a how-to question asks nothing and points to that area's documentation instead. The pages
are the areas' roots on developer.qiniu.com (the corpus's agents link pages under each of them) or the
console page agents send for bills: official pages on the link allow-list, never a composed URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Area:
    name: str                 # how a reply names it
    mentions: re.Pattern[str]
    doc: str
    # Words other products' questions use as much (a live stream's recordings are 「存到哪个空间」, an m3u8 is
    # transcoding's output too, 「截图」 is mostly the customer's own screenshot): each counts half, so
    # 「直播…录制…空间…文件」 is a live-streaming question.
    shared: re.Pattern[str] | None = None
    english: str = ""         # how an English reply names it


# Most specific first: an HTTPS certificate on a CDN domain is the certificate area.
AREAS: tuple[Area, ...] = (
    Area("SSL 证书", re.compile(r"证书|ssl|https|tls|\bcertificates?\b", re.I), "https://developer.qiniu.com/ssl",
         english="SSL certificate"),
    Area("直播", re.compile(r"直播|推流|拉流|rtmp|pili|\blive[ -]?stream", re.I), "https://developer.qiniu.com/pili",
         re.compile(r"hls|flv|m3u8", re.I), "live streaming (Pili)"),
    Area("实时音视频", re.compile(r"实时音视频|实时互动|rtc|连麦|上麦|语音房|房间", re.I), "https://developer.qiniu.com/rtc",
         english="real-time audio and video (RTC)"),
    Area("内容审核", re.compile(r"内容审核|审核接口|(图片|视频|文本|音频|增量)审核|鉴黄|涉黄|色情|暴恐|敏感图片|censor|"
                              r"\bmoderation\b", re.I), "https://developer.qiniu.com/censor", english="content moderation"),
    Area("智能多媒体", re.compile(r"转码|截帧|水印|缩略|瘦身|avthumb|vframe|imageview|imagemogr|dora|pfop|持久化处理|"
                                 r"\btranscod|\bwatermark|\bthumbnail", re.I),
         "https://developer.qiniu.com/dora", re.compile(r"截图"), "media processing (Dora)"),
    Area("CDN", re.compile(r"cdn|加速|回源|缓存|刷新|预取|cname|防盗链|referer|ip\s*[黑白]名单|访问控制|\bprefetch|"
                           r"\bhotlink", re.I), "https://developer.qiniu.com/fusion", english="CDN"),
    Area("财务", re.compile(r"费用|扣费|账单|计费|欠费|余额|充值|发票|资源包|流量包|提现|退款|\binvoices?\b|\bbill(s|ing)?\b|"
                          r"\brefunds?\b|\bbalance\b|\brecharge\b|\btop[ -]up\b", re.I),
         "https://portal.qiniu.com/financial/summary", english="billing"),
    Area("对象存储", re.compile(r"对象存储|bucket|kodo|qshell|上传|生命周期|归档|镜像|\bupload", re.I),
         "https://developer.qiniu.com/kodo", re.compile(r"存储|空间|下载|文件|外链|\bstorage\b|\bdownload", re.I),
         "object storage (Kodo)"),
)


_LINK = re.compile(r"(?:https?|rtmp)://\S+|\b[\w.-]+\.(?:com|cn|net|org|io)\S*", re.I)
# A screenshot the customer attaches (「截图如下」) says nothing about video frame capture.
_ATTACHED = re.compile(r"(?:附上?|见|如|看|参考|发(?:您|你)?)截图|截图(?:如下|所示|见附件|附上|发(?:您|你)|给(?:您|你)|[:：])")


# The documentation pages a reply may name without a case holding them.
DOC_ROOTS = tuple(dict.fromkeys(area.doc for area in AREAS))


def area_of(text: str, product: str | None = None) -> Area | None:
    """The area the ticket mentions most (links left out: the customer's https:// is no certificate question);
    on a tie, the one with more words of its own, then the more specific, first in ``AREAS``."""
    best = areas_of(text, product)
    return best[0] if best else None


def areas_of(text: str, product: str | None = None) -> tuple[Area, ...]:
    """The areas the ticket mentions most, tied (more words of their own first, then most specific first); none when
    it names no area."""
    bare = _ATTACHED.sub(" ", _LINK.sub(" ", f"{product or ''} {text}"))
    counts = [_mentions(area, bare) for area in AREAS]
    best = max((total for total, _ in counts), default=0.0)
    tied = sorted((i for i, (total, _) in enumerate(counts) if total == best), key=lambda i: (-counts[i][1], i))
    return tuple(AREAS[i] for i in tied) if best else ()


def _mentions(area: Area, text: str) -> tuple[float, int]:
    """How many of the area's words the text uses, each once, a shared word half (and never inside an own one:
    「对象存储」 is one word, not 「存储」 again); then how many of them are its own, which settles a tie
    (「avthumb/m3u8 切片做 HLS 加密」 is transcoding's)."""
    own = len(set(m.group(0).lower() for m in area.mentions.finditer(text)))
    if area.shared is None:
        return float(own), own
    rest = area.mentions.sub(" ", text)
    return own + 0.5 * len(set(m.group(0).lower() for m in area.shared.finditer(rest))), own


def same_area(ticket: str, case_question: str, case_answer: str = "") -> bool:
    """A case pointed at from a deferral must be about the ticket's area (when the ticket names one), judged by
    what its customer asked (its answer only when the question names no area: 「上传同名新图片还是旧的」 is a
    storage question whose answer is all CDN); a tie counts either way: 「CDN费用突然变高」 is as much a bill
    question as a CDN one."""
    mine = areas_of(ticket)
    theirs = areas_of(case_question) or areas_of(case_answer)
    return not mine or bool(set(mine) & set(theirs))


# The client platforms a question can be about, in one vocabulary (the toolchain ask reads it too). A case about one
# does not answer a question about another: an Android player's buffer setting was answered from the iOS player's
# case (a synthetic hard negative, st-a052).
PLATFORMS = {
    "android": re.compile(r"android|安卓", re.I),
    "ios": re.compile(r"(?<![a-z])ios(?![a-z])|iphone|ipad|苹果手机", re.I),
    "harmony": re.compile(r"鸿蒙|harmony", re.I),
    "miniprogram": re.compile(r"小程序"),
}


def platforms_of(text: str) -> frozenset[str]:
    return frozenset(name for name, mentions in PLATFORMS.items() if mentions.search(_LINK.sub(" ", text)))


def other_platform(ticket: str, case_question: str) -> bool:
    """The ticket names a client platform and the case's customer asked about another one, never the ticket's."""
    mine, theirs = platforms_of(ticket), platforms_of(case_question)
    return bool(mine and theirs and not mine & theirs)
