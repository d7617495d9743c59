"""What a deferral asks the customer for, read by the grader in its own words, against what it is reasonable to
ask (each labelled ticket's ``ask``, ``eval/relevance/heldout/SPEC.md``).

Only the sentences that ask (提供, 告知, 补充, 发一下, …) are read; in them each kind of detail is recognised by
its own patterns. Shares no code with ``rag/draft/details.py``, which decides what the drafter asks.
"""

from __future__ import annotations

import re
import unicodedata

# The labels' closed vocabulary.
KINDS = ("error", "request_id", "sdk", "toolchain", "code", "domain", "url", "bucket", "key", "account", "order",
         "screenshot", "time", "app", "goal")

_ASKING = re.compile(
    r"提供|告知|告诉(我们|我|一下)|补充|发(一下|下|给|过来)|贴(一下|出|上)|附上|截(个)?图(发|给)|麻烦(您)?(把|将)|"
    r"方便(的话)?(提供|发|告知|说明|截图)|请(您)?(说明|描述|确认)|具体(是|想|要)|哪(个|些|一)|是否|(吗|呢)[？?]|please (provide|send|share|tell)|"
    r"(could|can|would) you (please )?(provide|send|share|tell|give|paste|attach)|let us know|which \w+",
    re.I)
_SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]?")

_PATTERNS: dict[str, re.Pattern[str]] = {
    "error": re.compile(r"报错|错误(信息|码|提示|内容)|error|异常信息|返回(的)?(码|内容|信息)|状态码", re.I),
    "request_id": re.compile(r"reqid|request[ _-]?id|请求\s*id|请求标识", re.I),
    "sdk": re.compile(r"sdk|(工具|客户端|插件|库)(的)?(名称|版本)|调用的\s*api|哪个\s*api|api\s*(接口|名称)", re.I),
    "toolchain": re.compile(r"xcode|gradle|cocoapods|node\s*(版本|version)|go\s*(版本|version)|编译(环境|器)|构建环境|build environment|"
                            r"开发环境|系统版本|操作系统|android\s*studio|jdk|php\s*版本|python\s*版本", re.I),
    "code": re.compile(r"代码|调用参数|请求参数|上传策略|put\s*policy|参数配置|配置文件|命令行|命令|\bcode\b(?! ?\))|upload policy|"
                       r"\bparameters\b|\bcommand", re.I),
    "domain": re.compile(r"域名|domain", re.I),
    "url": re.compile(r"url|链接|网址|资源地址|访问地址|播放地址", re.I),
    "bucket": re.compile(r"空间(名|名称)|bucket|存储区域|所在区域|哪个空间", re.I),
    "key": re.compile(r"文件(的)?\s*key|文件名|对象名|\bkey\b|文件路径", re.I),
    "account": re.compile(r"账号|帐号|账户|帐户|登录邮箱|注册邮箱|uid|\baccount\b|log-?in e-?mail", re.I),
    "order": re.compile(r"订单|账单月份|账单周期|发票|流水号|交易号|\border\b|bill'?s? month|\binvoice", re.I),
    "screenshot": re.compile(r"截图|截屏|screenshot", re.I),
    "time": re.compile(r"(发生|出现|开始)(的)?(时间|时段)|具体时间|时间点|什么时候(出现|开始|发生)|大概(的)?时间|"
                       r"when (it|this) (happened|started|began)", re.I),
    "app": re.compile(r"appid|app\s*id|房间(名|号)|直播空间|推流(地址|域名)|签名|模板\s*id|短信模板|hub", re.I),
    "goal": re.compile(r"具体(遇到|是|想|要)|想(要)?(实现|做|达到)|需求|使用场景|业务场景|什么问题|"
                       r"what you (are trying|want|would like) to|what you see", re.I),
}
# A screenshot of the error is the error: asked as 报错截图, it counts once, as the error.
_ERROR_SCREENSHOT = re.compile(r"(报错|错误)(信息|提示)?(的)?截图|截图.{0,4}(报错|错误)", re.I)


def asked(draft: str) -> frozenset[str]:
    """The kinds of detail the draft asks for (empty: it asks for nothing)."""
    text = unicodedata.normalize("NFKC", draft)
    found: set[str] = set()
    for m in _SENTENCE.finditer(text):
        sentence = m.group(0)
        if not _ASKING.search(sentence):
            continue
        for kind, pattern in _PATTERNS.items():
            if pattern.search(sentence):
                found.add(kind)
        if "screenshot" in found and _ERROR_SCREENSHOT.search(sentence) and not re.search(
                r"(页面|控制台|界面|配置)(的)?截图", sentence):
            found.discard("screenshot")
            found.add("error")
    return frozenset(found)


def fits(draft: str, reasonable: frozenset[str]) -> bool:
    """The draft asks only for what is reasonable to ask (asking for nothing always fits)."""
    return asked(draft) <= reasonable
