"""What to ask a customer for when a reply cannot answer yet: one table, read by the policy's verdict (and
through it the deferral texts and the LLM prompt) and by the offline drafter.

There were two tables, one by topic (the policy) and one by product (the offline drafter), which asked the
same customer for different things depending on which path wrote the reply. The product names are topics
here: a ticket's product is searched with its text, so "实时互动" finds the RTC row as "rtc" does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.records import Ticket


@dataclass(frozen=True)
class Topic:
    mentions: re.Pattern[str]  # words (or the product's name) that place a ticket in this topic
    details: str               # what to ask for, as a phrase that follows "麻烦提供一下"


# First match first: a ticket about a domain held by another account needs the ownership check, not
# the CDN details; an SDK error needs the request id whatever the product.
TOPICS: tuple[Topic, ...] = (
    Topic(re.compile(r"找回|域名(已(经)?)?被(其他|别的)?(账号|用户)?(添加|绑定|占用)|已被(添加|绑定|占用)"),
          "需要找回的域名，以及能否在该域名的解析服务商处添加验证记录（用于验证域名所有权）"),
    Topic(re.compile(r"sdk|api|上传|upload|报错|error|错误码|\b[4-6]\d\d\b|token|回调|callback", re.I),
          "使用的 SDK 语言和版本（或调用的 API）、完整的报错信息（含错误码）以及请求 ID（X-Reqid）"),
    Topic(re.compile(r"cdn|加速|回源|缓存|刷新|预取|cname|访问慢|打不开", re.I),
          "加速域名、出现问题的完整 URL、报错截图以及大概的发生时间"),
    Topic(re.compile(r"证书|ssl|https|tls", re.I), "需要配置证书的域名，以及控制台上的提示或报错截图"),
    Topic(re.compile(r"空间|bucket|存储|文件|对象|kodo|镜像|生命周期", re.I), "空间名称、存储区域、相关文件的 key 以及报错信息"),
    Topic(re.compile(r"发票"), "账号（登录邮箱）以及对应的订单号或开票申请时间"),
    Topic(re.compile(r"账单|费用|扣费|欠费|余额|充值|退款|计费|套餐|资源包|多扣|收费", re.I),
          "账号（登录邮箱）以及相关的账单月份或订单号"),
    Topic(re.compile(r"直播|推流|拉流|rtmp|hls|flv|m3u8|pili", re.I), "直播空间名、推流或播放地址以及报错信息"),
    Topic(re.compile(r"实时互动|实时音视频|rtc|连麦|appid", re.I), "AppID、房间名以及报错信息"),
    Topic(re.compile(r"短信|签名|模板|验证码"), "短信签名或模板 ID，以及发送记录截图"),
    Topic(re.compile(r"转码|dora|截帧|水印|持久化|fop|persistent", re.I), "处理命令（fop 参数）、persistentId 以及报错信息"),
    Topic(re.compile(r"实名|认证|登录|注册|子账号|账号|帐号|密码"), "账号（登录邮箱）以及页面提示的截图"),
)
DEFAULT = "具体的报错信息或截图、相关的域名或空间名，以及请求 ID（X-Reqid）"


def customer_text(ticket: Ticket) -> str:
    """Everything the customer has said: earlier customer turns, then the ticket."""
    history = " ".join(t.text for t in ticket.history if t.role == "customer")
    return f"{history} {ticket.query_text}".strip()


def details_to_ask(text: str, product: str | None = None) -> str:
    """What the customer should send, from what the ticket mentions and its product (at most two topics)."""
    found = [t.details for t in TOPICS if t.mentions.search(f"{product or ''} {text}")]
    return "；".join(dict.fromkeys(found[:2])) if found else DEFAULT


def request_for(details: str) -> str:
    """The offline drafter's sentence asking for ``details``."""
    return f"为了进一步帮您确认，麻烦提供一下{details}，这边收到后马上为您排查。"
