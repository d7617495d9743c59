"""What a draft may do, decided before any text is written: answer from a past case, ask for details,
hand over to staff, or politely decline.

Honesty first, then coverage: `answer` only when the calibrated probability that the top case
addresses the ticket (``Hit.match``, see ``rag.retrieve.match``) reaches the threshold chosen for answer
precision >= 0.85. A support agent would rather get "no past case fits; ask the customer for X" than a
confident draft about another problem. The same verdict drives both backends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Sequence

from rag.dataset_markers import GREETINGS, PLACEHOLDERS
from rag.draft.actions import classify_reply, needs_staff
from rag.draft.details import customer_text, details_to_ask
from rag.records import Action, Hit, Ticket

Kind = Literal["fits", "no_fit", "vague", "staff", "bug_report", "feature_request", "off_topic", "no_cases"]

# Words that open a conversation but say nothing about the problem.
# Greetings, redaction tokens and the image marker say nothing either.
_EMPTY_TALK = re.compile("|".join((
    r"在吗|在不在|有人吗|请问|咨询(一下|下)?|问(一下|下)|有个问题|有问题|客服|人工|麻烦|谢谢|急|hey",
    *(re.escape(g) for g in GREETINGS), PLACEHOLDERS.pattern)), re.I)
_PUNCT = re.compile(r"[\s\W_]+")

_FEATURE_REQUEST = re.compile(
    r"(能不能|可不可以|能否|是否可以|什么时候)(能|可以|会)?(支持|增加|加上|加个|新增|提供|上线|开放|出)|"
    r"(希望|建议|期待)[^。！？\n]{0,24}(能|可以|支持|增加|加上|加个|新增|提供|上线|开放|自动)|"
    r"(需求|功能)建议|feature request|please (add|support)|would be (nice|great) (if|to)", re.I)
_BUG_REPORT = re.compile(
    r"(点|按)(了|击)?[^。！？\n]{0,12}(没|无)(有)?(任何)?(反应|响应)|"
    r"(页面|控制台|后台|按钮|界面)[^。！？\n]{0,12}(空白|白屏|打不开|卡死|卡住|报错|异常|崩溃|错乱|bug)|"
    r"崩溃|闪退|panic:|segmentation fault|sigsegv|\bcrash|\bbug\b|"
    r"(一直)?显示(为)?0|显示(错误|不正确|不对)|数据(是不是)?(出)?(问题|错误|不对|不一致|对不上)", re.I)
# Sales, contracts and account changes: a person must act, whatever a past case says.
_SALES_OR_ACCOUNT_CHANGE = re.compile(
    r"(安排|找|派)(个)?(人|销售|商务|同事)[^。！？\n]{0,6}(联系|对接|沟通)|联系(销售|商务)|私有化部署|报价|签(合同|约)|"
    r"(改成|改为|切换|更换|变更|换成)[^。！？\n]{0,8}(计费|付费|结算)")

# Terms that place a ticket within Qiniu's services; a ticket without any, and with no fitting case,
# is not a support question for this team.
SERVICE_TERMS = re.compile(
    r"七牛|qiniu|kodo|fusion|pili|dora|qshell|qrsctl|portal|控制台|工单|客服|技术支持|"
    r"cdn|加速|回源|缓存|刷新|预取|域名|cname|dns|解析|备案|证书|ssl|https?|tls|"
    r"存储|空间|bucket|对象|文件|上传|下载|外链|防盗链|鉴权|token|ak|sk|accesskey|secretkey|密钥|api|sdk|s3|"
    r"镜像|生命周期|归档|低频|转码|截图|水印|图片|视频|音频|直播|推流|拉流|点播|rtmp|hls|flv|m3u8|"
    r"短信|签名|模板|验证码|实时音视频|rtc|连麦|云主机|服务器|带宽|流量|请求数|计费|费用|扣费|账单|欠费|余额|充值|"
    r"退款|发票|订单|套餐|资源包|优惠券|实名|认证|账号|帐号|登录|注册|子账号|邮箱|手机号|报错|错误|失败|异常|"
    r"error|fail|timeout|http|ip|端口|ssl|websocket|域|配置|接口|回调|callback|bucket|region|zone", re.I)

@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one ticket, and why."""

    action: Action
    kind: Kind
    match: float                    # calibrated probability that the top case addresses the ticket
    threshold: float
    details: str                    # what to ask the customer for, tailored to the ticket
    fitting: tuple[Hit, ...] = ()   # the cases that address the ticket (empty unless kind == "fits")


def is_vague(text: str) -> bool:
    """True when, greetings aside, the ticket says too little to answer."""
    return len(_PUNCT.sub("", _EMPTY_TALK.sub("", text))) < 4


def about_services(text: str) -> bool:
    return bool(SERVICE_TERMS.search(text))


def decide(ticket: Ticket, hits: Sequence[Hit], threshold: float) -> Verdict:
    """The verdict for ``ticket`` given its retrieved ``hits`` (ordered by match probability)."""
    whole = customer_text(ticket)
    match = float(hits[0].match) if hits and hits[0].match is not None else 0.0
    details = details_to_ask(whole, ticket.product)
    fitting = tuple(h for h in hits if h.match is not None and h.match >= threshold)

    def verdict(action: Action, kind: Kind, fit: tuple[Hit, ...] = ()) -> Verdict:
        return Verdict(action, kind, round(match, 4), threshold, details, fit)

    if is_vague(whole):
        return verdict("ask_for_info", "vague")
    if needs_staff(whole) or _SALES_OR_ACCOUNT_CHANGE.search(whole):
        return verdict("escalate", "staff", fitting)
    if _FEATURE_REQUEST.search(whole):
        return verdict("escalate", "feature_request")
    if _BUG_REPORT.search(whole) and not fitting:
        return verdict("escalate", "bug_report")
    if not hits:
        return verdict("ask_for_info", "off_topic" if not about_services(whole) else "no_cases")
    if fitting:
        # A past answer that was itself a back-office action fits only as a hand-over.
        if classify_reply(fitting[0].answer) == "escalate":
            return verdict("escalate", "staff", fitting)
        return verdict("answer", "fits", fitting)
    if not about_services(whole):
        return verdict("ask_for_info", "off_topic")
    return verdict("ask_for_info", "no_fit")
