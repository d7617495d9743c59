"""What to ask a customer for when a reply cannot answer yet: only what this kind of question needs and the
ticket does not already give. One table, read by the policy's verdict (and through it the deferral texts and
the LLM prompt) and by the offline writer.

What a support lead asks for, by the kind of question (the labels of what it is reasonable to ask follow
the same lines, ``eval/relevance/heldout/SPEC.md``):
- how-to, pre-sales, "is it possible": nothing — point to that area's documentation instead;
- an error: the error code and the request id; nothing when Qiniu's message names the cause (「614 file exists」),
  the account when it says the account is disabled;
- a build error: the SDK and the toolchain versions;
- an app-store or compliance finding: the SDK and its version;
- billing: the order for invoices and refunds;
- a back-office request: what staff need to find it: the order for an order, nothing when the ticket names the
  domain or asks for a sales contact, else the domain;
- the account only when the ticket is about another account than the one it was filed from (an old account, a
  sub-account) or the customer cannot log in, or Qiniu says the account is disabled. A ticket is filed from the
  console, logged in: the agent sees its account, and no agent of the 114 past dialogues asked a customer for it
  (「账号（登录邮箱）」 asked of a billing question read as a form to a support lead);
- a vague ticket: what the customer is trying to do.
Nothing the ticket already says is asked again (its domain, its error code, its SDK version).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

from rag.draft.areas import PLATFORMS
from rag.records import Ticket
from rag.text.identifiers import find_identifiers
from rag.text.normalise import normalise

QuestionKind = Literal["build", "compliance", "error", "billing", "account", "howto"]


@dataclass(frozen=True)
class Detail:
    name: str
    phrase: str = field(compare=False)  # as it follows "麻烦提供一下"; worded for the ticket, the same detail
    given: re.Pattern[str]           # the ticket already says it
    english: str = field(default="", compare=False)  # as it follows "Could you send us"


_VERSION = r"\d+\.\d+(\.[\dx+*]+)?"
# An HTTP status code standing alone: not the last group of an amount (「CNY 12,400」 asked an invoice ticket for its
# request id) or of a decimal.
_STATUS = r"(?<![\d,.，])\b[4-6]\d\d\b(?![.,]\d)"
ERROR = Detail("error", "完整的报错信息（含错误码）", english="the full error message (with its error code)", given=re.compile(
    rf"{_STATUS}|错误码|error|exception|报错[:：]|报错信息|invalid|failed|failure|denied|timeout|x509|"
    r"\b[A-Z][a-zA-Z]+(Error|Exception)\b|errno|\{\s*\"error\"|dial tcp|no such host|refused|reset by peer|hang up|"
    r"(提示|显示|报)[:：]?\s*[“\"「]?[\u4e00-\u9fff]{2,12}(过期|无效|失败|错误|异常|不安全|不存在|拒绝)",  # a message quoted
    re.I))
REQUEST_ID = Detail("request_id", "请求 ID（响应头里的 X-Reqid）", re.compile(r"reqid|request[ _-]?id|请求\s*id", re.I),
                    "the request ID (the X-Reqid response header)")
SDK = Detail("sdk", "使用的 SDK（或工具）及其版本", english="the SDK (or tool) you use and its version", given=re.compile(
    # Qiniu's packages by name (「qiniu 7.14.1」 on npm, 「qplayer2-core 1.5.x」, 「qnweb-rtc@4.5.2」): re-asking a version the
    # ticket gives reads as a template (the twelfth read).
    rf"(sdk|qshell|kodo\s*browser|kodoimport|qiniu-[a-z]+|qiniu(?![\w-])|qn[a-z]+[\w-]*|qplayer[\w-]*|pili[\w-]*|"
    rf"happy-?dns[\w-]*|pod\s*'qiniu'|com\.qiniu)[^\n]{{0,30}}?{_VERSION}|"
    rf"(版本|version|v)\s*[:：]?\s*{_VERSION}", re.I))
TOOLCHAIN = Detail("toolchain", "编译环境的版本（如 Xcode、Gradle、Node.js、Go）",
                   english="the versions of your build environment (e.g. Xcode, Gradle, Node.js, Go)", given=re.compile(
    rf"(xcode|gradle|node(\.js)?|go|jdk|java|php|python|cocoapods|android\s*studio|webpack|vite)\s*[a-z]*\s*{_VERSION}|"
    r"(xcode|gradle)\s*\d+", re.I))
# The toolchain named in the ask is the ticket's own platform's: an Android build error asked for its Xcode version
# reads as a template. The first whose platform (``areas.PLATFORMS``) or build tools the ticket names; the generic
# list otherwise.
_TOOLCHAINS = (
    (re.compile(rf"{PLATFORMS['android'].pattern}|gradle|\bjdk\b|kotlin|\.aar\b|\bapk\b", re.I),
     ("Gradle", "JDK", "Android Studio")),
    (re.compile(rf"{PLATFORMS['ios'].pattern}|xcode|cocoapods|pod install|swift|objective-c|\bipa\b|bitcode", re.I),
     ("Xcode", "CocoaPods")),
    (re.compile(rf"{PLATFORMS['miniprogram'].pattern}|node|npm|yarn|pnpm|webpack|vite|typescript|\btsc\b|\.d\.ts|uni-?app",
                re.I), ("Node.js", "npm", "TypeScript")),
    (re.compile(r"\bgo\b|golang|go\s*mod", re.I), ("Go",)),
)
ACCOUNT = Detail("account", "账号（登录邮箱）", re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+|\buid\b\s*[:：]?\s*\d+", re.I),
                 "your account (its login email)")
ORDER = Detail("order", "相关的订单号或账单月份", english="the order number or the bill's month", given=re.compile(
    r"订单号?\s*[:：]?\s*\w{6,}|流水(号|id)?\s*[:：]?\s*\w{6,}|发票(号码?|代码)\s*[:：]?\s*\w{6,}", re.I))
DOMAIN = Detail("domain", "相关的域名", re.compile(r"$^"), "the domain concerned")  # read with the identifier finder below
# What else leads staff to the resource a hand-over is about: a cloud host by its instance id, a bucket by its name.
INSTANCE = Detail("instance", "云主机的实例 ID", re.compile(r"(?<![\w-])i-[a-z0-9]{8,}(?![\w-])|(实例|instance)\s*(id|ID)?\s*"
                  r"[:：]?\s*[a-z0-9][\w-]{5,}", re.I), "the cloud host's instance ID")
BUCKET = Detail("bucket", "相关的空间名称", re.compile(r"(空间|bucket)\s*(名称?)?\s*[:：]?\s*[`「“\"']?[a-z0-9][a-z0-9-]{2,}", re.I),
                "the bucket's name")
GOAL = Detail("goal", "您想实现的效果或遇到的具体现象", re.compile(r"$^"), "what you are trying to do, or what you see")

# 「上传构建产物」 uploads what a build made: not a build failing.
_BUILD = re.compile(r"编译|构建(?!产物)|打包(?!好的|后的)|archive|(?<![/\w-])build(?![/\w-])|gradle|xcode|cocoapods|pod install|npm|webpack|vite|tsc|"
                    r"\.d\.ts|bitcode|link(er|ing)?\s+error|undefined symbol|找不到(类型|模块|符号)", re.I)
# An app-store or privacy finding against an app (the SDK's version settles it). A review failing alone is not one:
# an SMS signature or a filing is reviewed too (「短信签名审核不通过」 was asked for the SDK's version), nor is a
# retention rule kept for compliance (「合规要求文件不可删改」 was too).
_COMPLIANCE = re.compile(r"应用(商店|市场)|app\s*store|上架|隐私(合规|政策|检测)|个人信息|读取设备|静默|后台运行时|"
                         # the ministry's finding against an app, not its filing or an IPv6 rule for a website
                         r"工信部[^。！？\n]{0,16}(通报|检测|隐私|违规|app|应用)|"
                         r"检测不通过|(app|应用|apk|ipa|小程序)[^。！？\n]{0,16}(审核|隐私|合规)", re.I)
# 「logcat 没有明显报错」 says there is no error to send: a build that 「编译运行能正常播放」 is no build failing.
_NO_ERROR = re.compile(r"(没有|没|无|不)(任何|明显的?|什么)?(报错|错误|异常)(信息|提示)?|no (obvious )?errors?", re.I)
_ERROR = re.compile(rf"报错|错误|失败|异常|error|exception|fail|{_STATUS}|超时|timeout|打不开|无法(访问|上传|下载|播放)|"
                    r"dial tcp|no such host|refused|reset by peer|hang up|"
                    r"访问不了|上传不了|下载不了|不能(访问|上传|下载|播放)", re.I)
_BILLING = re.compile(r"费用|扣费|扣款|扣了|账单|计费|收费|欠费|余额|充值|退款|发票|开票|价格|多少钱|资源包|流量包|套餐|免费额度|提现|"
                      r"\b(invoice|refund|billing|bill|charged?|top-?up|balance|pricing|fapiao)\b", re.I)
_ORDERED = re.compile(r"发票|开票|退款|订单|提现|退票|重开|\b(invoice|refund|order)\b", re.I)
_ACCOUNT = re.compile(r"账号|帐号|账户|实名|认证|登录|注册|子账号|密码|手机号|邮箱|注销|绑定")
_HOWTO = re.compile(r"怎么|如何|怎样|能否|能不能|可以吗|可不可以|是否(支持|可以|能)|有没有|支持吗|多久|多长时间|在哪|哪里|"
                    # how many days, a fee or not: a rule anyone gets, no order to look up (「几个工作日能到账？收手续费吗」)
                    r"几(个)?(工作日|天|小时)|多少天|(收|要|有)(手续费|费用?)吗|"
                    r"什么(区别|意思|原因)|为什么|为啥|how (do|can|to)|is it possible|can i", re.I)
# The ticket is about an account other than the one it was filed from, or its customer cannot log in: only then is the
# account something the agent does not already see.
_ANOTHER_ACCOUNT = re.compile(
    r"(其他|其它|另一个|另外一个|另外的|别的|旧的?|老的?|原来的?|之前的?|以前的?|子)(账号|帐号|账户|帐户)|"
    r"(登录|登陆)不(了|上|进去)|(无法|不能|没法)(登录|登陆)|登不(上|进)|忘(记)?(了)?(密码|账号|帐号|登录邮箱)|"
    r"找回(账号|帐号|密码)|(another|other|old|second) account|can'?t (log|sign) ?in", re.I)
# A request for a sales contact: staff need nothing from the customer to call back.
SALES_CONTACT = re.compile(r"(安排|找|派)(个)?(人|销售|商务|同事)[^。！？\n]{0,6}(联系|对接|沟通)|联系(销售|商务)|私有化部署|报价|"
                           r"签(合同|约)")
_SERVER_ERROR = re.compile(_STATUS + r"|返回|响应|response|status|状态码|错误码|\{\s*\"error\"|报错", re.I)
_CLIENT_ERROR = re.compile(r"dial tcp|lookup|no such host|connection (refused|reset)|timed? ?out|超时|x509|certificate|"
                           r"econn|socket hang up|网络(错误|异常|不通)|unknownhost|ssl|tls|resolve|"
                           # a browser's certificate warning, in Chinese: the page never asked Qiniu for anything
                           r"证书(已)?(过期|失效|无效|错误|不受信任)|日期无效|(提示|连接|网站|页面)不安全|不是私密连接", re.I)


# Qiniu's answer already names the cause (「614 file exists」, 「401 bad token」, 「400 incorrect region」): the code and its
# message are what a request id would show; an opaque one (a 5xx, 「unknown error」) still needs it. A disabled
# account (「419 user disabled」) is the account's matter.
_SELF_EXPLAINED = re.compile(
    r"\b(4\d\d|6\d\d|573|579)\b[^\n]{0,60}?(\{\s*\"error\"\s*:\s*\"|error[:：]\s*|text_body|\s)[^\n]{0,20}?"
    r"(file exists|no such (file|bucket|key)|bad token|incorrect region|key doesn'?t match|too many requests|"
    r"expired token|token (is )?expired|invalid (argument|put policy|token)|bad [a-z]+ param|"
    r"request entity too large|callback failed|unauthorized|forbidden)", re.I)
# A hand-over about Qiniu's cloud hosts, or about files kept in a bucket.
_CLOUD_HOST = re.compile(r"云主机|虚拟机|实例|\binstance\b|\becs\b", re.I)
_STORED = re.compile(r"空间|bucket|对象存储|存储桶|kodo|(文件|数据)(被)?(误)?(删|丢|恢复|找回|解冻)", re.I)
_SERVED = re.compile(r"cdn|域名|加速|回源|刷新|预取|证书|https", re.I)  # served from a domain: the domain finds it
_DISABLED = re.compile(r"user disabled|account (is )?(disabled|frozen)|账号(被)?(冻结|禁用)", re.I)


def customer_text(ticket: Ticket) -> str:
    """Everything the customer has said: earlier customer turns, then the ticket."""
    history = " ".join(t.text for t in ticket.history if t.role == "customer")
    return f"{history} {ticket.query_text}".strip()


def question_kind(text: str) -> QuestionKind:
    """What kind of question this is, for what to ask: the first that applies, most specific first. A billing or
    account question phrased as how / how long / is there a way is a how-to: it needs no lookup of the account."""
    text = _NO_ERROR.sub(" ", text)
    if _COMPLIANCE.search(text):
        return "compliance"
    if _BUILD.search(text) and _ERROR.search(text):
        return "build"
    if _ERROR.search(text) and (ERROR.given.search(text) or not _HOWTO.search(text)):
        return "error"
    if _HOWTO.search(text):
        return "howto"
    if _BILLING.search(text):
        return "billing"
    if _ACCOUNT.search(text):
        return "account"
    return "howto"


def server_answered(text: str) -> bool:
    """The error came back from Qiniu's servers (a status code, a response), so it has a request id; an error
    raised on the client (DNS, TCP, TLS, a timeout) never reached them."""
    return bool(_SERVER_ERROR.search(text)) and not _CLIENT_ERROR.search(text)


def _given(detail: Detail, text: str) -> bool:
    if detail is DOMAIN:
        return any(f.kind == "domain" for f in find_identifiers(normalise(text)))
    return bool(detail.given.search(text))


def details_for(text: str, kind: QuestionKind | None = None, *, staff: bool = False) -> tuple[Detail, ...]:
    """What to ask for ``text`` (a ticket's customer side): by its kind, minus what it already gives."""
    kind = kind or question_kind(text)
    # The account the ticket was filed from is the agent's to see: only another one is asked for (the docstring).
    account = (ACCOUNT,) if _ANOTHER_ACCOUNT.search(text) else ()
    wanted: tuple[Detail, ...]
    if staff:
        if _ORDERED.search(text):
            wanted = (*account, ORDER)
        elif SALES_CONTACT.search(text):
            wanted = ()                     # sales will contact the customer
        elif _given(DOMAIN, text) or _given(INSTANCE, text) or _given(BUCKET, text):
            wanted = ()                     # staff find the account from the domain or the resource, another account's too
        elif _BILLING.search(text) or _ACCOUNT.search(text):
            wanted = account
        else:
            # The resource's own identifier: asking a cloud host's customer for 「相关的域名」 cost an urgent ticket a
            # round trip (the twelfth read).
            wanted = (*account, INSTANCE if _CLOUD_HOST.search(text) else
                                  BUCKET if _STORED.search(text) and not _SERVED.search(text) else DOMAIN)
    else:
        wanted = {
            # An error raised on the client (DNS, TLS, a browser's certificate warning) never reached Qiniu: it has
            # no request id to send.
            "error": (ACCOUNT,) if _DISABLED.search(text) else () if _SELF_EXPLAINED.search(text) else
            (ERROR,) if _CLIENT_ERROR.search(text) else
            (ERROR, REQUEST_ID) if server_answered(text) or not ERROR.given.search(text) else (ERROR,),
            "build": (SDK, TOOLCHAIN),
            "compliance": (SDK,),
            "billing": (ORDER,) if _ORDERED.search(text) else account,
            "account": account,
            "howto": (),
        }[kind]
    return tuple(_for_platform(d, text) for d in wanted if not _given(d, text))


def _for_platform(detail: Detail, text: str) -> Detail:
    if detail is not TOOLCHAIN:
        return detail
    tools = next((t for platform, t in _TOOLCHAINS if platform.search(text)), None)
    return replace(detail, phrase=f"编译环境的版本（如 {'、'.join(tools)}）",
                   english=f"the versions of your build environment (e.g. {', '.join(tools)})") if tools else detail


def phrase(details: tuple[Detail, ...], *, english: bool = False) -> str:
    """The details as one phrase: "A、B 以及 C" (English: "A, B and C")."""
    parts = [d.english if english else d.phrase for d in details]
    if len(parts) <= 1:
        return "".join(parts)
    return (", " if english else "、").join(parts[:-1]) + (" and " if english else "以及") + parts[-1]


def request_for(details: tuple[Detail, ...], *, english: bool = False) -> str:
    """The sentence asking for ``details`` (empty when there is nothing to ask)."""
    if not details:
        return ""
    if english:
        return f"Could you please send us {phrase(details, english=True)}, so we can look into it?"
    return f"麻烦提供一下{phrase(details)}，方便这边进一步确认。"
