"""What a draft for a replayed corpus case should have done: the reference ``action_agreement`` grades against.

The drafter labels its own drafts with ``rag/draft/actions.py``; grading them with that classifier would
make a mistake of it agree with itself. The reference here shares no code with it. It asks what an agent
using the draft needs, from the hand labels first (``eval/relevance/groups/``, see ``labels.py``) and the
real agent's reply second:

- ``escalate`` when the real agent's reply is mainly a staff action (done in the back office, or handed to
  business or engineering staff): no draft can do that for the agent, so the draft should hand over.
- ``answer`` when the real agent answered the problem and the index holds a case of the same problem group
  whose agent answered it: a fitting past case exists, so the draft should answer from it.
- ``defer`` when no such case is in the index, or the agent never answered (``no_answer``): a draft that
  answers would be built on another problem's reply. Asking for details and handing over both agree.

Without labels for a case, only the reply decides: a staff action is ``escalate``, a reply that mainly asks
the customer for details is ``defer``, anything else ``answer`` (the old reading, in which agents almost
always "answered").
"""

from __future__ import annotations

import re
from typing import Collection, Literal

from rag.records import Action, Case
from rag.score.labels import GroupLabels

Reference = Literal["answer", "escalate", "defer"]

# Cue lists chosen by reading the 44 agent answers of part 15 that mention staff, the back office, finance,
# business or a ticket. Done by staff: "已处理完成", "配置已下发", "域名已解冻", "已为您反馈", "已经退票完成".
_STAFF_DONE = re.compile(
    r"已(经)?(为您|帮您)?(处理|下发|解冻|恢复|找回|开通|退款|退票|撤销|过户|加白|重置|反馈)(完成|好|了)?|"
    r"(处理|退票|审核)(完成|好)了?|配置(已|已经)下发"
)
# Handed to other staff: business contact, engineering, a manual intervention.
_STAFF_HANDOVER = re.compile(
    r"安排商务|商务(与|和|跟)您联系|同步(给)?(后端|商务|产研|技术|财务)|后端专员|反馈给|"
    r"提交给(我们|技术|工程师)|人工(介入|找回|处理)|手动帮您|给个(电话)?联系方式|提供(一个)?联系方式"
)
# Asking the customer for something before anything can be said.
_ASKS = re.compile(
    r"(麻烦|请|辛苦)(您|你们?)?(提供|粘贴|发|给|补充|截图|贴|告知|确认|检查)|"
    r"(给|发|提供)(一)?下(您的|你们的)?(链接|截图|域名|报错|订单|外链|账号|日志)|[？?]"
)
# A reply this short (characters, whitespace aside) that does a staff action does nothing else.
_SHORT = 160
_ASK_SHORT = 100


def agent_reply_action(reply: str) -> Action:
    """What the real agent's reply mainly did: a staff action, asking for details, or answering."""
    substance = len(re.sub(r"\s", "", reply))
    if substance == 0:
        return "ask_for_info"
    staff = len(_STAFF_DONE.findall(reply)) + len(_STAFF_HANDOVER.findall(reply))
    if staff and substance < _SHORT:
        return "escalate"
    if _ASKS.search(reply) and substance < _ASK_SHORT and "://" not in reply:
        return "ask_for_info"
    return "answer"


def reference_action(case: Case, labels: GroupLabels | None, index_ids: Collection[str]) -> Reference:
    """The action a draft for ``case`` should take when retrieval can see ``index_ids``."""
    replied = agent_reply_action(case.answer)
    if labels is None or case.id not in labels.group_of:
        return "answer" if replied == "answer" else "escalate" if replied == "escalate" else "defer"
    if case.id in labels.no_answer:
        return "defer"
    if replied == "escalate":
        return "escalate"
    return "answer" if labels.partners(case.id, [c for c in index_ids if c != case.id]) else "defer"


def agrees(action: Action, reference: Reference) -> bool:
    return action != "answer" if reference == "defer" else action == reference
