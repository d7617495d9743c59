"""A deferral's parts (rag/draft/deferral.py): the conditional pointer to a close case, the area's doc, what to
ask, and the hint for the agent; and the closing line for a customer who only thanks."""

from dataclasses import replace

from rag.draft import policy
from rag.draft.deferral import HOLDING, VerdictTexts, deferral
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


def test_an_english_ticket_is_deferred_in_english():
    """A support lead graded an English customer's Chinese decline under an English line "small edit: write it in
    English" (held-out ht-b046): every deferral that quotes no past case is written in English."""
    import re

    from rag.score.asks import asked

    writer = OfflineWriter(TEXTS)
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for text, kind, must in [
        ("How can I delete every file in a bucket before closing my account?", "no_cases",
         "object storage (Kodo) documentation may help: https://developer.qiniu.com/kodo"),
        ("Cloudflare R2: the custom domain for my public bucket has been stuck at Initializing. How do I fix it?",
         "off_topic", "outside what we can answer"),
        ("Hi, uploads from our server fail with a 500 error since this morning, what is wrong with your API?", "no_cases",
         "the request ID (the X-Reqid response header)"),
        ("Thanks a lot, that fixed it!", "closing", "glad it's sorted"),
        ("Hello, is there anyone who can help me with a question?", "vague", "How can we help you?"),
        ("Can you help me write a poem about autumn?", "off_topic", "outside what we can answer"),
    ]:
        ticket = Ticket(text)
        v = policy.decide(ticket, [], 0.6)
        reply = writer.write(ticket, [], v, k=5).text
        assert v.kind == kind and must in reply and not cjk.search(reply), (text, reply)
        assert reply.startswith("Hello, ") and ENGLISH_NOTE not in reply and "Hello, We" not in reply, reply
    # the grader reads an English request like a Chinese one
    assert asked("Hello, could you please send us the request ID (the X-Reqid response header), so we can look into it?") \
        == {"request_id"}
    # a pointer quotes a Chinese case: the reply stays Chinese, under one English line
    hit = _hit("您好，可以在控制台 CDN → 刷新预取 里提交 URL 刷新，一般 10 分钟左右生效。", 0.4)
    ticket = Ticket("How do I refresh the CDN cache after I overwrite a file? The old one is still served.")
    v = policy.decide(ticket, [hit], 0.6)
    reply = writer.write(ticket, [hit], v, k=5).text
    assert v.kind == "no_fit" and "如果您是指" in reply and reply.startswith(ENGLISH_NOTE), reply


def test_the_pointer_says_the_piece_that_answers_this_ticket_not_merely_the_first():
    hit = _hit("您好，证书一般 10 分钟左右部署完成。\n主机记录是去除根域名的部分，记录值按页面上给出的填写即可。",
               title="证书一直在审核")
    ticket = Ticket("证书一直待审核，DNS 验证的主机记录我填的是完整域名，是不是哪里不对")
    parts = deferral(policy.decide(ticket, [hit], 0.6), ticket)
    assert parts.pointer == "如果您是指“证书一直在审核”，主机记录是去除根域名的部分，记录值按页面上给出的填写即可。"


def test_a_pointer_drops_the_diagnosis_clause_and_keeps_the_fix_with_its_links():
    hit = _hit("您好，这个是CDN缓存导致的，你们刷新下CDN缓存即可，刷新方法请参考：https://developer.qiniu.com/fusion/"
               "kb/1325/refresh-the-cache-and-the-effect-of-time 方法1: portal.qiniu.com 控制台刷新缓存，点击左侧 cdn => "
               "刷新预取，url 刷新全网生效 10min 左右，目录刷新需要 30min 左右", title="上传新图片")
    ticket = Ticket("覆盖上传了同名的文件，下载下来还是旧的，在空间里看已经是新文件了")
    v = policy.decide(ticket, [hit], 0.6)
    parts = deferral(v, ticket)
    assert v.related is not None  # a storage question whose answer is all CDN is still the same area
    assert parts.pointer.startswith("如果您是指“上传新图片”，你们刷新下CDN缓存即可")
    assert "导致" not in parts.pointer and "https://developer.qiniu.com/fusion/kb/1325/" in parts.pointer


def test_a_pointer_is_never_a_heading_a_question_to_that_customer_or_a_sentence_leaning_on_the_last():
    for answer in ("您好，1、maxAge值和CDN缓存时间的区别理解：",
                   "您好，你们是不是没有配置对应的验证解析呢",
                   "您好，请问是这个域名吗？\n如果是的话，主机记录不对。"):
        hit = _hit(answer, title="证书一直在审核")
        ticket = Ticket("证书一直待审核，主机记录是不是哪里不对")
        assert deferral(policy.decide(ticket, [hit], 0.6), ticket).pointer == "", answer


def test_an_unnameable_title_gives_way_to_what_the_ticket_shares_with_the_case():
    hit = _hit("您好，生命周期规则只对规则生效后新上传的文件生效，之前上传的文件需要手动处理。",
               title="tls: failed to verify certificate: x509")
    hit = Hit(replace(hit.case, question="空间设置了生命周期规则，为什么老文件没有删除"), 0.3, "a:case", "", match=0.3)
    ticket = Ticket("昨天给空间加了生命周期规则，去年传的文件今天还在，规则是不是没生效？")
    parts = deferral(policy.decide(ticket, [hit], 0.6), ticket)
    assert parts.pointer.startswith("如果您是指“给空间加了生命周期规则”，") or parts.pointer.startswith("如果您是指“生命周期规则")
    assert "新上传的文件生效" in parts.pointer


def test_the_case_pointed_at_is_the_closest_by_match_not_the_first_ranked():
    far = _hit("您好，可以在控制台 CDN → 刷新预取 里提交 URL 刷新。", 0.25, title="刷新缓存")
    near = Hit(replace(far.case, id="b" * 16, title="CDN 刷新缓存"), 0.45, "b:case", "", match=0.45)
    v = policy.decide(Ticket("CDN 上的图片更新后还是旧的，要怎么处理？"), [far, near], 0.6)
    assert v.related is not None and v.related.case_id == "b" * 16


def test_an_attached_screenshot_does_not_make_a_bill_question_a_multimedia_one():
    from rag.draft.areas import area_of, areas_of, same_area

    text = "这个月CDN费用比上个月多了600多，是不是被盗刷了 截图如下[图片]"
    assert {a.name for a in areas_of(text)} == {"CDN", "财务"}
    assert area_of("视频截图怎么设置").name == "智能多媒体"
    assert same_area(text, "扣费异常\n最近扣费很多")  # a tie counts either way
    assert not same_area("直播推流断开怎么办", "证书过期\nhttps 证书怎么续期")


def test_a_product_named_outweighs_words_every_product_uses():
    from rag.draft.areas import area_of

    # the storage words of a live-streaming question (「空间」「文件」) count half: the doc is Pili's, not Kodo's
    assert area_of("直播能自动录制回放吗？录下来的文件存到哪个空间，在哪开").name == "直播"
    # HLS is transcoding's output too: with avthumb it is a multimedia question
    assert area_of("avthumb/m3u8 切片想做HLS加密，hlsKey 要传什么格式？").name == "智能多媒体"
    assert area_of("HLS 拉流延迟很大").name == "直播"
    # a customer's own screenshot is no frame capture
    assert area_of("最近两个月CDN这一项突然涨了几十倍，怎么查是谁在跑这些流量？截图").name == "CDN"
    assert area_of("IP黑名单最多能加多少条？").name == "CDN"
    assert area_of("对象存储的空间怎么改成公开").name == "对象存储"   # 「对象存储」 is one word, not 「存储」 again


def test_a_pointer_never_carries_another_versions_fix_nor_a_past_customers_long_question_as_its_topic():
    hit = _hit("您好，7.14.0 版本有这个问题，先降级到 7.13.2 即可，修复后会发新版本。", title="SDK 上传报错")
    ticket = Ticket("升级 SDK 到 7.15.0 后上传报权限错误，root 和 www-data 用户都试过")
    assert deferral(policy.decide(ticket, [hit], 0.6), ticket).pointer == ""  # graded harmful when it was sent
    same = Ticket("SDK 7.14.0 上传报错了，怎么办")
    assert "7.13.2" in deferral(policy.decide(same, [hit], 0.6), same).pointer
    glued = _hit("您好，python sdk先退回下版本，使用7.13.2。", title="上传文件报错")  # a version right after Chinese
    assert deferral(policy.decide(ticket, [glued], 0.6), ticket).pointer == ""
    long_title = _hit("您好，存储是根据存储量扣费的，超出免费额度后按量计费。",
                      title="我想知道现在扣费是怎么扣的，每天扣多少")
    ticket = Ticket("为什么每天都在扣钱？我就放了点图片")
    assert "我想知道" not in deferral(policy.decide(ticket, [long_title], 0.6), ticket).pointer


def test_a_case_under_the_pointer_floor_is_the_agents_hint_only_and_the_hint_is_not_cut_short():
    steps = "。".join(["先在域名的 DNS 服务商处查看现有的 CAA 记录，确认是否限制了可签发的证书机构",
                      "如果有 CAA 记录，需要添加一条允许 DigiCert 签发的记录，记录值填写 0 issue digicert.com",
                      "添加后等待解析生效，一般需要十分钟左右，可以用 dig 命令查询确认是否已经生效",
                      "同时需要关闭回源鉴权、时间戳防盗链、IP 黑白名单和 referer 防盗链这几项配置",
                      "加速域名需要 CNAME 到七牛分配的 CNAME 域名，否则代理验证也会失败",
                      "以上都确认好以后，回到证书管理页面重新提交免费证书的申请即可",
                      "证书签发后会在十分钟内自动部署到加速域名上，整体一般两个小时内完成",
                      "第八步：部署完成后请用浏览器访问一下加速域名，确认证书信息正确"])
    low = _hit(f"您好，{steps}。", 0.25, title="证书申请失败")
    ticket = Ticket("免费证书申请一直失败，CAA 记录要怎么设置？")
    v = policy.decide(ticket, [low], 0.6)
    parts = deferral(v, ticket)
    assert v.related is not None and parts.pointer == ""  # 0.25 < POINTER_MATCH: nothing said to the customer
    assert parts.hint is not None and "第八步" in parts.hint.resolution  # the whole fix, past the reply's budget
    high = _hit(f"您好，{steps}。", 0.35, title="证书申请失败")
    assert deferral(policy.decide(ticket, [high], 0.6), ticket).pointer.startswith("如果您是指“证书申请失败”")


def test_a_deferral_with_nothing_to_ask_and_no_case_to_point_at_says_the_question_is_being_looked_at():
    """A doc page alone read as a brush-off (graded useless in two reads of held-out drafts)."""
    howto = Ticket("私有空间怎么改成公开空间？改了以后以前带token的链接还能用吗")
    v = policy.decide(howto, [_hit("您好，请提供一下域名。", 0.01, title="其他问题")], 0.6)
    parts = deferral(v, howto)
    reply = TEXTS.reply(v, parts)
    assert parts.pointer == parts.ask == "" and reply.startswith(f"您好，{HOLDING}\n") and "developer.qiniu.com/kodo" in reply
    error = Ticket("上传一直失败，返回 401")
    v = policy.decide(error, [_hit("您好，请提供一下域名。", 0.01, title="其他问题")], 0.6)
    reply = TEXTS.reply(v, deferral(v, error))
    assert HOLDING not in reply and "麻烦提供一下" in reply  # asking is the next step: no holding line
    pointed = Ticket("CDN 上的图片更新后还是旧的，要怎么处理？")
    v = policy.decide(pointed, [_hit("您好，可以在控制台 CDN → 刷新预取 里提交 URL 刷新，一般 10 分钟左右生效。")], 0.6)
    assert HOLDING not in TEXTS.reply(v, deferral(v, pointed))


def test_a_pointer_names_the_topic_not_a_heading():
    """「如果您是指“关于上传路径”」 read as a copied heading (seventh read)."""
    hit = _hit("您好，key 里带上 / 就可以了，例如 avatar/1.png，控制台会按目录显示。", 0.35, title="关于上传路径")
    ticket = Ticket("上传的时候怎么把文件放到某个目录下面？")
    v = policy.decide(ticket, [hit], 0.6)
    pointer = deferral(v, ticket).pointer
    assert pointer.startswith("如果您是指“上传路径”，") and "关于" not in pointer


def test_a_pointer_that_says_one_step_of_a_list_drops_its_number():
    # 「如果您是指“急需发票”，2、增值税普通发票…」 read as pasted from a list the customer never saw
    hit = _hit("您好，开票说明如下\n1、开票金额需为已消费金额。\n2、增值税普通发票可选择申请电子或纸质发票，增值税专用发票只能选择纸质发票。",
               title="急需发票")
    ticket = Ticket("想开增值税专用发票，能开电子的吗，还是只能纸质的发票？")
    parts = deferral(policy.decide(ticket, [hit], 0.6), ticket)
    assert parts.pointer.startswith("如果您是指“急需发票”，增值税普通发票"), parts.pointer


def test_a_close_case_of_another_area_is_the_agents_hint_and_never_pointed_at():
    # held-out ht-b081: a CDN traffic question; the case that answers it was asked as a bill question (「费用异常」)
    case = CaseRecord(id="b" * 16, title="2024年7月费用异常", product="CDN", subcategory="", scenarios=(),
                      root_cause=None, source="x.md", line=1, question="2024-7月的费用异常",
                      answer="您好您可以在 控制台 - cdn - 统计分析 - 日志分析 中看到您的top访问情况，比如高频访问的URL和客户端IP。"
                             "如有部分IP请求数异常，您可以在域名管理 - 访问控制 中，开启IP黑白名单，对这部分IP进行封禁。")
    hit = Hit(case, 0.37, "b:case", "", match=0.37)
    ticket = Ticket("CDN统计里看海外流量占了快一半，我们根本没有海外用户。怎么查这些海外请求是哪来的？能不能把海外的访问都屏蔽掉")
    v = policy.decide(ticket, [hit], 0.6)
    parts = deferral(v, ticket)
    assert v.kind == "no_fit" and v.related is None and v.elsewhere is hit
    assert parts.pointer == "" and parts.hint is not None and "日志分析" in parts.hint.resolution
    assert "日志分析" not in TEXTS.reply(v, parts)
    # a case of the ticket's own area, however close the other, is the one pointed at and hinted
    same = _hit("您好，可以在控制台 CDN → 访问控制 里开启区域访问控制，屏蔽海外访问。", 0.3, "CDN 屏蔽海外访问")
    v = policy.decide(ticket, [hit, same], 0.6)
    assert v.related is same and v.elsewhere is None
    assert deferral(v, ticket).hint.case_id == "a" * 16


def test_a_hand_over_and_a_fitting_case_with_nothing_reusable_carry_the_closest_resolution_for_the_agent():
    writer = OfflineWriter(TEXTS)
    # a hand-over with no fitting case: the agent taking it still sees how a close one was resolved
    recovery = _hit("您好，域名在其他账号下创建，会导致当前账号下创建失败，需要您设置一个 TXT 解析验证，然后提交给我们确认。",
                    0.5, "域名找回")
    ticket = Ticket("之前外包用他们的账号加了我们的加速域名，现在联系不上，麻烦帮我找回域名")
    v = policy.decide(ticket, [recovery], 0.6)
    reply = writer.write(ticket, [recovery], v, k=5)
    assert v.kind == "staff" and reply.action == "escalate"
    assert reply.hint is not None and "TXT" in reply.hint.resolution and "TXT" not in reply.text
    # a fitting case whose agent only said what they did for that customer: the next close case is the hint
    status = CaseRecord(id="b" * 16, title="自定义域名访问慢", product="CDN", subcategory="", scenarios=(), root_cause=None,
                        source="x.md", line=2, question="测试域名很快，自己的域名很慢", answer="您好，这边看您刚修改了覆盖范围，您这边后续再确认一下呢")
    fitting = Hit(status, 0.9, "b:case", "", match=0.9)
    coverage = _hit("您好，您的域名是海外加速，国内访问慢符合预期的，需要将域名的覆盖范围设置成全球加速即可。", 0.45, "访问速度慢")
    slow = Ticket("测试域名打开很快，换成我们自己绑的域名就要好几秒，用户都在国内")
    v = policy.decide(slow, [fitting, coverage], 0.6)
    reply = writer.write(slow, [fitting, coverage], v, k=5)
    assert v.kind == "fits" and reply.action == "ask_for_info"
    assert reply.hint is not None and reply.hint.case_id == "a" * 16 and "覆盖范围" in reply.hint.resolution
    # nothing close enough: no hint
    far = replace(coverage, match=0.1, score=0.1)
    assert writer.write(slow, [fitting, far], policy.decide(slow, [fitting, far], 0.6), k=5).hint is None


def _case_hit(case_id: str, title: str, turns: list[tuple[str, str]], match: float = 0.9) -> Hit:
    from rag.records import Dialogue, Turn

    dialogue = Dialogue(turns[0][1], tuple(Turn(role, text) for role, text in turns))
    answer = "\n".join(text for role, text in turns if role == "agent")
    case = CaseRecord(id=case_id, title=title, product="CDN", subcategory="", scenarios=(), root_cause=None,
                      source="x.md", line=1, question=turns[0][1], answer=answer, dialogue=dialogue)
    return Hit(case, match, f"{case_id}:case", "", match=match)


def test_a_hand_over_says_what_the_customer_must_do_first_and_a_question_the_case_answers_is_answered():
    writer = OfflineWriter(TEXTS)
    # the past customer asked how long a review takes, then for a rush: the agent's rush was a back-office action,
    # the wait is what this ticket asks (a support lead graded 「工作人员在后台为您处理」 here a false promise)
    review = _case_hit("c" * 16, "短信签名审核", [
        ("customer", "短信签名提交了，审核一般要多久？"), ("agent", "您好，当前需要等待运营商审核通过，请您先耐心等待"),
        ("customer", "能加急吗"), ("agent", "已为您处理加急")])
    ticket = Ticket("刚提交了短信签名，审核一般要多久啊？着急上线")
    v = policy.decide(ticket, [review], 0.6)
    reply = writer.write(ticket, [review], v, k=5)
    assert v.kind == "staff" and reply.action == "answer" and "运营商审核" in reply.text and "后台" not in reply.text
    # a ticket asking staff to act is handed over, with what the customer must do first above the hand-over
    recovery = _case_hit("d" * 16, "域名找回", [
        ("customer", "添加域名提示已被其他用户添加"),
        ("agent", "您好，域名在其他账号下创建，会导致当前账号下创建失败，需要您设置一个 TXT 解析验证，然后提交给我们确认后，"
                  "我们手动帮您过户到当前账号。注意：每月1-3号为出账期，不支持域名过户。")])
    ticket = Ticket("麻烦帮我找回域名 static.example-shop.cn，它被以前外包的账号加过")
    v = policy.decide(ticket, [recovery], 0.6)
    reply = writer.write(ticket, [recovery], v, k=5)
    assert reply.action == "escalate" and "TXT" in reply.text and "1-3号" in reply.text
    assert reply.text.index("TXT") < reply.text.index("工作人员在后台")
    # a past answer that only says what staff did tells this customer nothing: the hand-over alone
    done = _case_hit("e" * 16, "域名找回", [("customer", "添加域名提示已被其他用户添加"), ("agent", "您好，已经为您处理完成了")])
    reply = writer.write(ticket, [done], policy.decide(ticket, [done], 0.6), k=5)
    assert reply.action == "escalate" and reply.text.startswith("您好，这个需要工作人员在后台为您处理") and "处理完成了" not in reply.text
