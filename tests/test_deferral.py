"""A deferral's parts (rag/draft/deferral.py): the conditional pointer to a close case, the area's doc, what to
ask, and the hint for the agent; and the closing line for a customer who only thanks."""

from rag.draft import policy
from rag.draft.deferral import VerdictTexts, deferral
from rag.draft.writers.offline import ENGLISH_NOTE, OfflineWriter
from rag.records import CaseRecord, Hit, Ticket
from rag.settings import PROJECT_ROOT

TEXTS = VerdictTexts(PROJECT_ROOT / "prompts")


def _hit(answer: str, match: float = 0.3, title: str = "CDN 刷新缓存") -> Hit:
    case = CaseRecord(id="a" * 16, title=title, product="CDN", subcategory="", scenarios=(), root_cause=None,
                      source="x.md", line=1, question="CDN 更新了文件还是旧的", answer=answer)
    return Hit(case, match, "a:case", "", match=match)


def test_a_close_case_is_pointed_at_conditionally_and_its_resolution_is_the_agents_hint():
    hit = _hit("您好，可以在控制台 CDN → 刷新预取 里提交 URL 刷新，一般 10 分钟左右生效。")
    ticket = Ticket("CDN 上的图片更新后还是旧的，要怎么处理？")
    v = policy.decide(ticket, [hit], 0.6)
    parts = deferral(v, ticket)
    assert v.kind == "no_fit" and parts.pointer.startswith("如果您是指“CDN 刷新缓存”，")
    assert "刷新预取" in parts.pointer
    assert parts.hint is not None and parts.hint.case_id == "a" * 16 and "刷新预取" in parts.hint.resolution
    reply = TEXTS.reply(v, parts)
    assert reply.startswith("您好，如果您是指") and "这边暂时没有找到" not in reply


def test_a_pointer_never_states_another_customers_diagnosis():
    # "it was caused by…" under 「如果您是指…」 reads as this customer's cause (a support lead graded it harmful)
    hit = _hit("您好，根据您的描述可以判断您的问题是由于测试域名被回收导致的。\n"
               "可以在控制台绑定自己的已备案域名后再访问。", title="外链打不开")
    ticket = Ticket("空间里的图片外链突然打不开了，怎么办？")
    v = policy.decide(ticket, [hit], 0.6)
    parts = deferral(v, ticket)
    assert "判断" not in parts.pointer and "导致" not in parts.pointer
    assert parts.pointer == "" or "绑定" in parts.pointer
    assert parts.hint is not None and "测试域名" in parts.hint.resolution  # the agent still sees it


def test_a_customer_who_only_thanks_gets_a_closing_line_not_a_refusal():
    for text in ("好了 已经弄好了 谢谢", "问题已解决，感谢", "OK, thanks!"):
        v = policy.decide(Ticket(text), [_hit("您好，刷新一下即可。", 0.01)], 0.6)
        assert v.kind == "closing" and v.action == "ask_for_info" and v.details == (), text
        reply = OfflineWriter(TEXTS).write(Ticket(text), [], v, k=5).text
        assert "不客气" in reply and "不在服务范围" not in reply and "提供" not in reply
    for text in ("谢谢，另外想问下CDN怎么刷新", "好的，我试试", "解决了吗"):
        assert policy.decide(Ticket(text), [], 0.6).kind != "closing", text


def test_an_english_deferral_does_not_claim_to_draw_on_past_cases():
    writer = OfflineWriter(TEXTS)
    ticket = Ticket("How can I delete every file in a bucket before closing my account?")
    v = policy.decide(ticket, [], 0.6)
    reply = writer.write(ticket, [], v, k=5).text
    assert v.action != "answer" and ENGLISH_NOTE not in reply and reply.startswith("（This reply is written in Chinese.）")
