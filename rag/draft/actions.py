"""What a reply does: answer, ask for missing information, or hand over to staff.

One classifier serves both sides: the drafter labels its own draft with it, and the evaluation
labels the real agent's answer with it, so action agreement compares like with like.
"""

from __future__ import annotations

import re

from rag.records import Action

# The agent says staff did, or will do, something in the back office.
_ESCALATE = re.compile(
    r"手动介入|后台(处理|操作|帮您|为您|核实|审核)|已(经)?(处理完成|为您处理|帮您处理|下发|重新下发|解冻|恢复|找回|开通|退款|撤销|关闭)|"
    r"配置已(经)?下发|已处理|处理完成|提交(给)?(技术|工程师|相关同事)|反馈给(技术|相关|工程师)|工单(已)?(提交|反馈)|"
    r"找回域名|域名找回|审核(发票|中)|财务(同事)?(审核|处理)"
)
# The agent asks the customer for something specific.
_ASK = re.compile(
    r"(麻烦|请|辛苦)(您)?(提供|发|给|补充|截图|贴|告知|确认)|提供(一下|下)?(您的|具体|相关)?|(发|给)(一下|下)?(截图|链接|域名|报错|订单|请求)|"
    r"是什么(呢)?[？?]|(哪个|哪些)(域名|空间|文件|订单)|具体(是)?(哪|什么)|截图(给|发)|报错(信息|截图)(是|发)"
)
# A customer asking for one of these needs staff, whatever the past answers say.
_STAFF_REQUEST = re.compile(r"重新下发|找回(域名|账号)|域名找回|(审核|开具|作废|重开)(一下)?发票|发票(审核|作废|重开)|解冻|注销账号|退款")


def classify_reply(text: str) -> Action:
    """Label a reply (a draft or a real agent answer) by what it mainly does."""
    if not text.strip():
        return "ask_for_info"
    escalate = len(_ESCALATE.findall(text))
    ask = len(_ASK.findall(text))
    substance = len(re.sub(r"\s", "", text))
    if escalate and (substance < 80 or escalate >= ask + 1 and substance < 200):
        return "escalate"
    if ask and substance < 120:
        return "ask_for_info"
    return "answer"


# Asking how, or how long, is a question a past answer may settle ("解冻要多久", "怎么注销账号"), not a request.
_ASKS_HOW = re.compile(r"怎么|如何|怎样|多久|多长时间|要多长|流程|步骤|在哪|哪里|能不能|可以吗|是否|正常吗|"
                       # in English too: 「How long does SMS template review take?」 was handed to staff as stuck
                       r"\bhow (long|do|does|can|to|much|many|soon)\b|\bis (there|it possible)\b|\bare there\b|"
                       r"\bwhen will\b|\bwhat is the\b", re.I)


def asks_how(ticket: str) -> bool:
    return bool(_ASKS_HOW.search(ticket))


def needs_staff(ticket: str) -> bool:
    return bool(_STAFF_REQUEST.search(ticket)) and not asks_how(ticket)
