import re

import pytest

from rag.draft.actions import classify_reply
from rag.draft.guards import invented_links, leaked_identifiers
from rag.draft.resolution import resolve
from rag.draft.writers.offline import ENGLISH_NOTE
from rag.records import CaseRecord, Ticket, Turn

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def drafter(corpus_pipeline):
    return corpus_pipeline.make_drafter()


def _case(question: str, *turns: tuple[str, str]) -> CaseRecord:
    from rag.records import Dialogue

    dialogue = Dialogue(question, tuple(Turn(role, text) for role, text in turns))  # type: ignore[arg-type]  # roles as written
    return CaseRecord("c", "标题", "CDN", "", (), None, "x.md", 1, question,
                      "\n".join(t for r, t in turns if r == "agent"), dialogue=dialogue)


def test_a_resolution_leaves_out_filler_greetings_dates_and_status_lines():
    answer = "您好，请稍等\n您好，看下2024-10-15 11:43:13回复的内容。免费证书申请https://portal.qiniu.com/certificate/apply2.补全信息\n已处理完成"
    resolved = resolve(_case("证书怎么申请", ("customer", "证书怎么申请"), ("agent", answer)), "证书怎么申请", [])
    assert resolved is not None
    assert resolved.text == "免费证书申请 https://portal.qiniu.com/certificate/apply\n2.补全信息"


def test_a_fix_that_follows_a_question_back_is_the_resolution():
    # The HappyDNS case: the agent first asks which SDK, the customer answers, then comes the fix.
    case = _case("上架vivo应用商店，隐私检测不通过，HappyDNS 读取设备IP",
                 ("customer", "上架vivo应用商店，隐私检测不通过，HappyDNS 读取设备IP"),
                 ("agent", "您好，您这边使用的是什么产品的SDK呢？什么语言的SDK呢？"),
                 ("customer", "对象存储 android com.qiniu:qiniu-android-sdk:8.4.+"),
                 ("agent", "您好，您稍等这边确认一下"),
                 ("agent", "关闭dns预解析就可以了GlobalConfiguration.getInstance().isDnsOpen = false 关闭 DNS 预解析"),
                 ("customer", "好的我看下，谢谢"))
    resolved = resolve(case, "小米应用商店审核不通过：HappyDNS 获取设备IP地址，这个要怎么关", [])
    assert resolved is not None and "isDnsOpen = false" in resolved.text and "什么语言" not in resolved.text


def test_another_problem_the_past_customer_moved_on_to_is_left_out():
    case = _case("扣费是怎么扣的",
                 ("customer", "扣费是怎么扣的，每天扣多少"),
                 ("agent", "您好，可以在财务中心的账单和消费详情里查看明细：https://portal.qiniu.com/financial/summary"),
                 ("customer", "另外视频转码失败是为什么？"),
                 ("agent", "转码失败一般是源文件编码不支持，可以换成 H264 编码后再处理。"))
    billing = resolve(case, "我想查一下每天扣费多少", [])
    assert billing is not None and "财务中心" in billing.text and "转码" not in billing.text
    both = resolve(case, "扣费怎么查？视频转码失败又是为什么？", [])
    assert both is not None and "财务中心" in both.text and "H264" in both.text


def test_each_question_of_a_ticket_takes_the_thread_that_answers_it():
    """A ticket that explains its first question at length shares most of its words with that thread; its second
    question (「有没有回调能判断…」) still takes the follow-up thread that answers it (held-out ht-a017, graded
    "small edit: add the line that answers Q2")."""
    case = _case("在主播推流后，我们会把直播间状态设置为直播中，这时候观看端可以进入直播间拉流观看。如果观看端在主播端推流后马上进入"
                 "直播间观看，会有十几秒左右的时间黑屏。怎么解决这个问题",
                 ("customer", "在主播推流后，我们会把直播间状态设置为直播中，这时候观看端可以进入直播间拉流观看。如果观看端在主播端推流后"
                              "马上进入直播间观看，会有十几秒左右的时间黑屏。怎么解决这个问题"),
                 ("agent", "您好，正常的标准直播延时 rtmp 达到 10秒，建议尝试下低延时直播，拉流需要使用低延时播放器。"),
                 ("customer", "有没有接口或回调判断在拉流端是否有正常流可以拉"),
                 ("agent", "拉流的延时是没有接口或回调判断的，主要是协议导致的。"))
    ticket = ("Pili 直播：主播开播后观众马上进房会黑屏十几秒，有没有事件能判断流已经能播了？\n"
              "流程是主播端推流成功（收到推流 SDK 的 streaming 状态）后，服务端把房间置为直播中，观众端用 RTMP 拉流。\n"
              "问题是观众如果马上进房，前 10~15 秒都是黑屏。想问：\n1. 这个黑屏时间能不能缩短；\n"
              "2. 有没有服务端接口或回调能判断拉流端已经能拉到画面了，我们等这个信号再放观众进房。")
    both = resolve(case, ticket, [])
    assert both is not None and "低延时直播" in both.text and "没有接口或回调" in both.text
    assert both.text.index("低延时直播") < both.text.index("没有接口或回调")  # in the dialogue's order
    one = resolve(case, ticket.split("2.")[0], [])
    assert one is not None and "没有接口或回调" not in one.text


def test_a_numbered_step_left_alone_loses_its_number():
    from rag.draft.resolution import unnumber_lone_step
    from rag.draft.sentences import Piece

    lone = unnumber_lone_step([Piece("Tip：如果您不清楚如何使用转码接口", 0, (), 0), Piece("1.可以使用控制台的转码样式。", 0, (), 1)])
    assert [p.text for p in lone] == ["Tip：如果您不清楚如何使用转码接口", "可以使用控制台的转码样式。"]
    # a neighbour on the same line, or on the next one, keeps the list
    kept = [Piece("1、账号为普通账号 2、账号下无用量", 0, (), 0), Piece("3、账号下无欠费", 1, (), 1)]
    assert unnumber_lone_step(kept) == tuple(kept)


def test_a_customer_pushing_back_on_the_answer_stays_in_its_thread():
    """「暂时没办法分开，有没有其他办法？」 asks on about the same problem: the answer with the detail (two domains,
    an overseas bucket) stays with the restatement that follows it (development nt-055 got the restatement alone)."""
    case = _case("海外访问出现504超时",
                 ("customer", "在海外德国访问资源时，出现504超时错误，麻烦帮忙看下是否存在问题"),
                 ("agent", "您好，跨境链路无法保证稳定性且跨境无法优化，建议您可以使用两个域名分开下国内和海外的业务请求，海外使用海外存储区域的空间。"),
                 ("customer", "暂时没办法分开，有没有其他办法？空间设置了全球覆盖，不是应该能解决这个问题吗？"),
                 ("agent", "这部分少量的请求超时是被跨境的链路影响到了的，由于跨境链路无法优化，后期建议还是分一下海外和国内的业务。"))
    text = resolve(case, "荷兰用户偶尔访问返回504，源站是华东的空间，CDN覆盖范围是全球，怎么解决", []).text
    assert "海外存储区域的空间" in text and "跨境的链路影响" in text
    # a new question after the answer still opens its own thread
    case = _case("海外访问出现504超时",
                 ("customer", "在海外德国访问资源时，出现504超时错误"),
                 ("agent", "您好，建议您可以使用两个域名分开下国内和海外的业务请求，海外使用海外存储区域的空间。"),
                 ("customer", "另外发票怎么开？"),
                 ("agent", "发票可以在控制台的发票管理里申请开具。"))
    assert "发票" not in resolve(case, "海外访问504超时怎么办", []).text


def test_a_list_the_budget_would_cut_goes_on_to_its_next_step():
    """「三条命令就可以了。1.先下载qshell…」 with the listing step cut promised three commands and gave one."""
    from rag.draft.resolution import BODY_BUDGET, LIST_GRACE

    steps = ["1.先下载qshell工具并使用qshell account 命令登陆账户。", "2.使用qshell listbucket2命令列举出空间内所有资源。",
             "3.使用qshell batchdelete命令批量删除列举出的资源。"]
    kinds = "、".join(f"{a}{b}类文件" for a in "甲乙丙丁戊己庚辛壬癸" for b in "子丑寅卯辰巳午未申酉戌亥")
    intro = ("您可以通过qshell批量删除，三条命令就可以了，" + kinds)[:BODY_BUDGET - len(steps[0]) - 8] + "都可以这样删除。"
    case = _case("空间文件太多怎么删除", ("customer", "空间文件太多，怎么删除"), ("agent", intro + "".join(steps)))
    text = resolve(case, "空间文件太多怎么删除", []).text
    assert len(intro) + len(steps[0]) <= BODY_BUDGET < len(intro) + len(steps[0]) + len(steps[1])
    assert "listbucket2" in text  # the next step, within the grace
    assert "batchdelete" in text or len(intro) + sum(map(len, steps)) > BODY_BUDGET + LIST_GRACE
    # a sentence that is no next step still stops at the budget
    case = _case("空间文件太多怎么删除", ("customer", "空间文件太多，怎么删除"),
                 ("agent", intro + steps[0] + "另外也可以使用图形化工具 Kodo Browser 一键勾选删除空间内的资源。"))
    assert "Kodo Browser" not in resolve(case, "空间文件太多怎么删除", []).text


def test_after_the_customer_says_it_is_fixed_a_new_problem_is_never_the_answer():
    """The past customer's problem was fixed by their own change, then they moved on to another one: the fix for
    that other problem (an SDK upgrade for upload packet loss) is no answer to this ticket, even when nothing in
    the ticket's own thread is reusable (it was sent to a slow-domain question once, graded harmful)."""
    case = _case("自己绑定的域名打开很慢，测试域名秒开",
                 ("customer", "用测试域名秒开，用我们自己绑定的域名要好久才能打开"),
                 ("agent", "您好，这边看您刚修改了这个域名的配置，您这边后续再确认一下呢"),
                 ("customer", "改了覆盖范围可以了"),
                 ("customer", "上传还是有时候会出现丢包情况，能帮忙协助下么"),
                 ("agent", "您好，您这边试下更新到7.13.0看下吧，api上传丢包的话没有其他方法"))
    resolved = resolve(case, "同一张图测试域名打开很快，换成我们自己绑的域名就要转好几秒", [])
    assert resolved is None or "7.13.0" not in resolved.text
    upload = resolve(case, "上传的时候有时候丢包怎么办", [])
    assert upload is not None and "7.13.0" in upload.text


def test_the_agents_hint_leads_with_the_thread_closest_to_the_ticket():
    case = _case("大目录迁移到另一个空间并设置为深度归档",
                 ("customer", "大目录迁移到另一个空间并设置为深度归档，主要是省钱"),
                 ("agent", "您好，可以先给新空间设置生命周期规则，再设置跨区域同步迁移。"),
                 ("customer", "转成深度归档以后，用 kodo browser 可以直接下载取回吗？"),
                 ("agent", "您好，深度归档的文件需要先解冻，解冻约5～12个小时，之后才能下载。"))
    ticket = "监控录像设置成深度归档以后，要调出来是不是直接在 kodo browser 里下载就行？"
    in_order = resolve(case, ticket, [], 1200)
    hint = resolve(case, ticket, [], 1200, closest_first=True)
    assert in_order is not None and hint is not None
    assert in_order.text.startswith("可以先给新空间") and hint.text.startswith("深度归档的文件需要先解冻")


def test_certificate_ticket_gets_the_template_answer(drafter):
    draft = drafter.draft(Ticket("证书过期了，怎么重新申请免费证书？", product="CDN"))
    assert draft.action == "answer" and draft.backend == "offline"
    assert draft.text.startswith("您好，") and draft.text.count("您好") == 1
    assert "稍等" not in draft.text and "[图片]" not in draft.text
    # The manual application page, or (a CDN ticket: the CDN agents' own answer) the one-click path in 域名管理.
    assert "https://portal.qiniu.com/certificate/apply" in draft.links or "[域名管理]" in draft.text, draft.text
    assert "免费证书" in draft.text
    assert draft.confidence >= 0.3
    assert draft.citations and all(c.case_id and c.title for c in draft.citations)
    assert draft.prompt_id == "offline" and draft.latency_ms > 0


def test_offline_draft_is_deterministic(drafter):
    t = Ticket("CDN 刷新缓存多久生效？")
    assert drafter.draft(t).text == drafter.draft(t).text


def test_vague_ticket_asks_for_information(drafter):
    # a greeting is asked what it is about, and nothing else; a vague problem is asked what the customer wants
    greeting = drafter.draft(Ticket("在吗，有个问题"))
    assert greeting.action == "ask_for_info" and greeting.verdict == "vague"
    assert "有什么可以帮您" in greeting.text and "麻烦提供" not in greeting.text
    problem = drafter.draft(Ticket("我的东西打不开了"))
    assert problem.action == "ask_for_info" and problem.verdict == "vague"
    assert "具体遇到了什么问题" in problem.text and "效果" in problem.text


def test_staff_only_operation_escalates(drafter):
    draft = drafter.draft(Ticket("域名被别人占用了，需要找回域名，麻烦后台帮我处理"))
    assert draft.action == "escalate"
    assert "工作人员" in draft.text


def test_classifier_on_real_agent_answers():
    assert classify_reply("您好，已经处理完成，您确认下") == "escalate"
    assert classify_reply("麻烦提供一下您的域名") == "ask_for_info"
    assert classify_reply("您好，手动申请并使用免费SSL证书步骤如下1.免费证书申请2.补全信息3.免费证书验证4.升级HTTPS配置，"
                          "在域名管理中点击配置，开启 HTTPS 后选择免费证书即可，配置生效大约需要十分钟左右。") == "answer"


def test_no_leaks_or_invented_links_over_the_whole_corpus(drafter, corpus_pipeline):
    """Leave-one-out over every case: the draft never carries another customer's identifiers or unknown links."""
    from rag.corpus.parse import parse_paths

    cases, _ = parse_paths([corpus_pipeline.settings.ingest.data_dir])
    for case in cases:
        ticket = Ticket(case.question or case.title, title=case.title)
        draft = drafter.draft(ticket, exclude=[case.id])
        context = f"{ticket.title}\n{ticket.text}"
        # Public hosts (digicert.com, used by agents across cases) are not leaks: the corpus says so.
        guard = drafter.guard
        assert leaked_identifiers(draft.text, context, guard.allowlist, guard.known_links, guard.corpus) == [], case.title
        assert invented_links(draft.text, context, guard.known_links, guard.allowlist, guard.corpus) == []
        assert draft.text.removeprefix(ENGLISH_NOTE + "\n").startswith("您好，")
        assert not re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", draft.text)


def test_certificate_question_gets_a_console_or_doc_link(drafter):
    draft = drafter.draft(Ticket("证书过期了，网站提示不安全，怎么重新申请免费证书"))
    assert draft.action == "answer"
    assert any(link.startswith(("https://portal.qiniu.com/", "https://developer.qiniu.com/")) for link in draft.links)


def test_english_ticket_is_answered_under_an_english_line_or_deferred_in_english(drafter):
    draft = drafter.draft(Ticket("How do I renew the free SSL certificate of my CDN domain? It expired yesterday."))
    # Answered (or pointed at a case), a line says the steps below are in Chinese; deferred, it is all English.
    if draft.action == "answer" or "如果您是指" in draft.text:
        assert draft.text.startswith(ENGLISH_NOTE) and "Chinese" in draft.text
    else:
        assert draft.text.startswith("Hello, ") and not re.search(r"[\u4e00-\u9fff]", draft.text), draft.text
    pasted_log = drafter.draft(Ticket('[{"title": "请求 ID", "content": "wL4X34YWB6LaV_wX"}, {"title": "日志栈", "content": "Error"}]'))
    assert ENGLISH_NOTE not in pasted_log.text and pasted_log.text.startswith("您好")


def test_independent_detector_finds_no_leak_or_defect_over_the_whole_corpus(drafter, corpus_pipeline):
    """Leave-one-out over every case, graded by the corpus-learned detector that shares no code with the guards."""
    from rag.corpus.parse import parse_paths
    from rag.score.leaks import LeakDetector

    cases, _ = parse_paths([corpus_pipeline.settings.ingest.data_dir])
    detector = LeakDetector.from_cases(cases)
    problems = []
    for case in cases:
        ticket = Ticket(case.question or case.title, title=case.title)
        draft = drafter.draft(ticket, exclude=[case.id])
        found = detector.check(draft.text, f"{ticket.title}\n{ticket.text}", case.id)
        if found.leaks or found.defects:
            problems.append((case.title, found))
        # whole sentences only: every line ends at a sentence end, a link, or is a step/short line of the past answer
        assert not re.search(r"https?:/?/?$", draft.text)
    assert problems == []


def test_among_cases_matched_about_as_well_the_one_whose_customer_asked_this_is_chosen():
    """A case's first thread may be a template while a later customer asked exactly this ticket's question
    (「不是一年吗。怎么3个月啦」): among fitting cases matched about as well, the closer thread wins; a clearly better
    match still wins over a closer thread."""
    from rag.draft.writers.offline import choose
    from rag.records import Hit

    def hit(case_id: str, match: float) -> Hit:
        record = CaseRecord(id=case_id, title="证书", product="CDN", subcategory="", scenarios=(), root_cause=None,
                            source="t.md", line=1, question="证书", answer="您好，这样操作即可。")
        return Hit(case=record, score=match, chunk_id=f"{case_id}:case", chunk_text="", match=match)

    ticket, bodies = Ticket("免费证书为什么只有90天"), ["您好，这样操作即可。"] * 3
    close = [0.1, 0.5, 0.9]
    assert choose(ticket, [hit("a", 0.95), hit("b", 0.9), hit("c", 0.6)], bodies, [True] * 3, close) == 1
    assert choose(ticket, [hit("a", 0.95), hit("b", 0.7), hit("c", 0.6)], bodies, [True] * 3, close) == 0
    assert choose(ticket, [hit("a", 0.95), hit("b", 0.9), hit("c", 0.6)], bodies, [True, False, True], close) == 0
