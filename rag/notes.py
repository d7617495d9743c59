"""Notes: why a draft is what it is, as typed records (a kind and its values), rendered in English (logs, the
CLI, the JSON's ``notes``) and Chinese (the agents' page, the JSON's ``notes_zh``) from one table.

Code that needs to know what happened tests the record's type (``isinstance(n, LLMFallback)``), never the
text. Every kind declares both texts beside its fields; ``tests/test_notes.py`` renders every kind, so a
kind without a translation, or a text naming a field the kind does not have, fails.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

# The prompt fields an injection note names, as the page shows them.
_FIELDS_ZH = {"customer_message": "客户消息", "ticket_title": "标题", "ticket_product": "产品",
              "conversation_history": "历史对话"}


@dataclass(frozen=True, slots=True)
class Note:
    """Base of every note; a kind is a subclass with its values as fields and its two texts."""

    en: ClassVar[str]
    zh: ClassVar[str]

    @property
    def kind(self) -> str:
        return type(self).__name__

    def values(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def text(self, language: str = "en") -> str:
        template = self.zh if language == "zh" else self.en
        return template.format(**self.values())

    def __str__(self) -> str:
        return self.text("en")


def render(notes: "tuple[Note, ...] | list[Note]", language: str = "en") -> list[str]:
    return [n.text(language) for n in notes]


# --- the verdict: why a draft does not answer ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NoFit(Note):
    match: float
    threshold: float
    en = "no past case fits (match {match:.2f} < {threshold:.2f}): asking the customer for details"
    zh = "没有与问题相符的历史案例（匹配度 {match:.2f}，低于 {threshold:.2f}），已请客户补充信息"


@dataclass(frozen=True, slots=True)
class NoCases(Note):
    en = "no similar past case: asking the customer for details"
    zh = "没有相似的历史案例，已请客户补充信息"


@dataclass(frozen=True, slots=True)
class Vague(Note):
    en = "the ticket does not describe the problem yet"
    zh = "客户尚未描述具体问题"


@dataclass(frozen=True, slots=True)
class Closing(Note):
    en = "the customer thanks or says the problem is solved: a closing line, nothing asked"
    zh = "客户致谢或告知问题已解决，已简短回应"


@dataclass(frozen=True, slots=True)
class OffTopic(Note):
    en = "the ticket is not about Qiniu's services"
    zh = "工单与七牛云的产品和服务无关，已礼貌说明"


@dataclass(frozen=True, slots=True)
class Staff(Note):
    en = "staff must act in the back office"
    zh = "需要工作人员在后台处理"


@dataclass(frozen=True, slots=True)
class BugReport(Note):
    en = "a bug report: handed over to engineers"
    zh = "产品故障反馈，已转交技术同事排查"


@dataclass(frozen=True, slots=True)
class FeatureRequest(Note):
    en = "a feature request: handed over to the product team"
    zh = "功能需求，已转交产品同事评估"


# --- the offline writer -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ComposedFrom(Note):
    case_id: str
    en = "composed from case {case_id}"
    zh = "基于历史案例 {case_id} 改写"


@dataclass(frozen=True, slots=True)
class DocLinkAdded(Note):
    en = "doc link added from the supporting cases"
    zh = "已从相似案例中补充文档链接"


@dataclass(frozen=True, slots=True)
class LowSupport(Note):
    support: float
    en = "low support ({support:.2f}): asking for details"
    zh = "相似案例支持度低（{support:.2f}），已请客户补充信息"


@dataclass(frozen=True, slots=True)
class EnglishTicket(Note):
    en = "English ticket: the reply says it draws on Chinese cases"
    zh = "英文工单：回复中已说明参考的是中文案例"


@dataclass(frozen=True, slots=True)
class NoSimilarCase(Note):
    en = "no similar past case"
    zh = "没有相似的历史案例"


@dataclass(frozen=True, slots=True)
class NothingReusable(Note):
    en = "past cases hold no reusable answer"
    zh = "相似案例中没有可复用的解答"


# --- the guards ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Injection(Note):
    field: str
    pattern: str
    en = "possible prompt injection in {field}: {pattern}"
    zh = "疑似提示词注入（{field_zh}）：{pattern}"

    def values(self) -> dict[str, object]:
        return {"field": self.field, "pattern": self.pattern, "field_zh": _FIELDS_ZH.get(self.field, self.field)}


@dataclass(frozen=True, slots=True)
class RemovedLinks(Note):
    links: tuple[str, ...]
    en = "removed links not in the corpus or allow-list: {joined}"
    zh = "已删除不在案例库或白名单中的链接：{joined}"

    def values(self) -> dict[str, object]:
        return {"links": self.links, "joined": ", ".join(self.links)}


@dataclass(frozen=True, slots=True)
class RemovedIdentifiers(Note):
    count: int
    en = "removed {count} identifier(s) of other customers"
    zh = "已替换 {count} 处其他客户的标识信息"


@dataclass(frozen=True, slots=True)
class SubstanceRemoved(Note):
    sentences: tuple[str, ...]
    en = "the guard removed what a sentence pointed to ({joined}): not an answer as it stands"
    zh = "安全检查删除了句子所指向的内容（{joined}），当前回复不能直接作为解答"

    def values(self) -> dict[str, object]:
        return {"sentences": self.sentences, "joined": "；".join(self.sentences)}


# --- the LLM writer -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LLMFallback(Note):
    error: str
    en = "LLM failed, offline fallback: {error}"
    zh = "大模型调用失败，已改用离线草稿（{error}）"


@dataclass(frozen=True, slots=True)
class ContextTrimmed(Note):
    cases: int
    en = "context too long: retried with {cases} case(s)"
    zh = "上下文过长，已改用 {cases} 个案例重试"


@dataclass(frozen=True, slots=True)
class LLMDoesNotAnswer(Note):
    inferred: str
    en = "the LLM reply does not answer: action inferred from the text ({inferred})"
    zh = "大模型的回复没有直接解答，已根据回复内容判断处理方式（{inferred}）"


@dataclass(frozen=True, slots=True)
class LLMOverruled(Note):
    match: float
    threshold: float
    action: str
    en = "LLM said answer, but no past case fits (match {match:.2f} < {threshold:.2f}): marked {action}"
    zh = "大模型给出了解答，但没有相符的历史案例（匹配度 {match:.2f}，低于 {threshold:.2f}），已标记为 {action}"


@dataclass(frozen=True, slots=True)
class LLMMoreCautious(Note):
    said: str
    verdict: str
    en = "LLM said {said} where the match verdict said {verdict}: marked {said}"
    zh = "大模型判断为 {said}（匹配结论为 {verdict}），已按更谨慎的 {said} 标记"


@dataclass(frozen=True, slots=True)
class FollowsTicketInstructions(Note):
    instructions: tuple[str, ...]
    en = "the reply follows instructions found in the ticket ({joined}); needs a person, not sent as an answer"
    zh = "回复照做了工单中的指令（{joined}），需人工处理，不作为解答发送"

    def values(self) -> dict[str, object]:
        return {"instructions": self.instructions, "joined": ", ".join(self.instructions)}


@dataclass(frozen=True, slots=True)
class MarkdownRemoved(Note):
    en = "Markdown in the LLM reply turned into plain text"
    zh = "大模型回复中的格式标记（标题、加粗、列表符号等）已改为纯文本"


@dataclass(frozen=True, slots=True)
class ComposedLinksRemoved(Note):
    links: tuple[str, ...]
    en = "removed links the LLM composed (in no case and no doc page): {joined}"
    zh = "已删除大模型自行拼写的链接（不在案例或文档中）：{joined}"

    def values(self) -> dict[str, object]:
        return {"links": self.links, "joined": ", ".join(self.links)}


@dataclass(frozen=True, slots=True)
class InternalWordingRemoved(Note):
    count: int
    en = "removed {count} passage(s) of the LLM reply that spoke about the ticket or the prompt, not to the customer"
    zh = "已删除大模型回复中 {count} 处内部措辞（在谈论工单或提示词，而不是对客户说话）"


@dataclass(frozen=True, slots=True)
class Shortened(Note):
    chars: int
    en = "the LLM reply was cut back to {chars} characters, at a sentence end"
    zh = "大模型回复过长，已在句末截短到 {chars} 字"


@dataclass(frozen=True, slots=True)
class InvisibleRemoved(Note):
    en = "invisible or control characters removed from the reply"
    zh = "已删除回复中的不可见字符或控制字符"


def all_kinds() -> list[type[Note]]:
    """Every note kind this module declares (for the translation test and the docs)."""
    return sorted((k for k in Note.__subclasses__() if k.__module__ == __name__), key=lambda k: k.__name__)
