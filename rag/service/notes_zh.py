"""The drafter's notes (English, for logs and the CLI) as the Chinese messages the agents' page shows.

One table of patterns; a note no pattern knows is shown as "系统说明：<note>" and ``translate`` returns None
for it, which a test over every case's draft turns into a failure, so a new note gets its translation here.
"""

from __future__ import annotations

import re
from typing import Callable

_FIELDS = {"customer_message": "客户消息", "ticket_title": "标题", "ticket_product": "产品",
           "conversation_history": "历史对话"}

_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = tuple(
    (re.compile(p), f) for p, f in (
        (r"^(?:composed|adapted) from case (\S+)$", lambda m: f"基于历史案例 {m[1]} 改写"),
        (r"^doc link added from the supporting cases$", lambda m: "已从相似案例中补充文档链接"),
        (r"^the ticket does not describe the problem yet$", lambda m: "客户尚未描述具体问题"),
        (r"^low support \(([\d.]+)\): asking for details$", lambda m: f"相似案例支持度低（{m[1]}），已请客户补充信息"),
        (r"^English ticket: the reply says it draws on Chinese cases$", lambda m: "英文工单：回复中已说明参考的是中文案例"),
        (r"^possible prompt injection(?: in (\w+))?: (.*)$",
         lambda m: f"疑似提示词注入{f'（{_FIELDS.get(m[1], m[1])}）' if m[1] else ''}：{m[2]}"),
        (r"^LLM failed, offline fallback: (.*)$", lambda m: f"大模型调用失败，已改用离线草稿（{m[1]}）"),
        (r"^context too long: retried with (\d+) case\(s\)$", lambda m: f"上下文过长，已改用 {m[1]} 个案例重试"),
        (r"^LLM gave no ACTION line; action inferred from the text$", lambda m: "大模型未给出处理方式，已根据回复内容判断"),
        (r"^no similar past case$", lambda m: "没有相似的历史案例"),
        (r"^no past case fits \(match ([\d.]+) < ([\d.]+)\): asking the customer for details$",
         lambda m: f"没有与问题相符的历史案例（匹配度 {m[1]}，低于 {m[2]}），已请客户补充信息"),
        (r"^no similar past case: asking the customer for details$", lambda m: "没有相似的历史案例，已请客户补充信息"),
        (r"^the ticket is not about Qiniu's services$", lambda m: "工单与七牛云的产品和服务无关，已礼貌说明"),
        (r"^staff must act in the back office$", lambda m: "需要工作人员在后台处理"),
        (r"^a bug report: handed over to engineers$", lambda m: "产品故障反馈，已转交技术同事排查"),
        (r"^a feature request: handed over to the product team$", lambda m: "功能需求，已转交产品同事评估"),
        (r"^LLM said answer, but no past case fits \(match ([\d.]+) < ([\d.]+)\): marked (\w+)$",
         lambda m: f"大模型给出了解答，但没有相符的历史案例（匹配度 {m[1]}，低于 {m[2]}），已标记为 {m[3]}"),
        (r"^past cases hold no (?:reusable|substantive) answer$", lambda m: "相似案例中没有可复用的解答"),
        (r"^removed links not in the corpus or allow-list: (.*)$", lambda m: f"已删除不在案例库或白名单中的链接：{m[1]}"),
        (r"^removed (\d+) identifier\(s\) of other customers$", lambda m: f"已替换 {m[1]} 处其他客户的标识信息"),
    )
)


def translate(note: str) -> str | None:
    for pattern, render in _PATTERNS:
        m = pattern.match(note.strip())
        if m:
            return render(m)
    return None


def notes_zh(notes: list[str] | tuple[str, ...]) -> list[str]:
    return [translate(n) or f"系统说明：{n}" for n in notes]
