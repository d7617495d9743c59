"""What a draft may do, decided before any text is written: answer from a past case, ask for details,
hand over to staff, or politely decline.

Honesty first, then coverage: `answer` only when the calibrated probability that the top case
addresses the ticket (``Hit.match``, see ``rag.retrieve.rerank.match_model``) reaches the threshold chosen for answer
precision >= 0.85. A support agent would rather get "no past case fits; ask the customer for X" than a
confident draft about another problem. The same verdict drives both backends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Sequence

from rag.text.markers import GREETINGS, GREETINGS_EN, PLACEHOLDERS
from rag.draft.actions import asks_how, classify_reply, needs_staff
from rag.draft.areas import other_platform, same_area
from rag.draft.details import GOAL, SALES_CONTACT, Detail, QuestionKind, customer_text, details_for, question_kind
from rag.draft.language import content_words, writes_english
from rag.records import Action, Hit, Ticket

Kind = Literal["fits", "no_fit", "vague", "closing", "staff", "bug_report", "feature_request", "off_topic", "no_cases"]

# Words that open a conversation but say nothing about the problem.
# Greetings, redaction tokens and the image marker say nothing either.
_EMPTY_TALK = re.compile("|".join((
    r"在吗|在不在|有人吗|请问|咨询(一下|下)?|问(一下|下)|有个问题|有问题|客服|人工|麻烦|谢谢|急|hey",
    *(re.escape(g) for g in GREETINGS), PLACEHOLDERS.pattern)), re.I)
_PUNCT = re.compile(r"[\s\W_]+")
_EMPTY_TALK_EN = re.compile(rf"\b({'|'.join(GREETINGS_EN)}|hey|help|please|thanks?|question|problem|issue|anyone|someone|there|"
                            r"working|works?)\b", re.I)
_VAGUE_SYMPTOM = re.compile(r"打不开|不行|用不了|不能用|有问题|出问题|出错|坏了|失败|不好使|没反应|异常|报错|上传不了|下载不了|访问不了|"
                            # a screenshot and 「帮我看下这个」: what it shows, and what they want, is the question
                            r"看(一)?下这个|这个怎么(回事|办)|怎么回事|什么情况")
# What a symptom happens to: a product, a feature, an error string, a code.
_SPECIFIC = re.compile(r"cdn|证书|https|域名|空间|bucket|sdk|api|直播|推流|短信|转码|发票|账单|回调|token|上传|下载|访问|播放|"
                       r"登录|刷新|解析|备案|图片|视频|文件|[A-Za-z]{4,}|\d{3}", re.I)

_FEATURE_REQUEST = re.compile(
    r"(能不能|可不可以|能否|是否可以|什么时候)(能|可以|会)?(支持|增加|加上|加个|新增|提供|上线|开放|出)|"
    # 「能不能给 batchdelete 加个 --prefix 参数」: a feature of a tool, not a favour for this account
    r"(能不能|可不可以|能否|是否可以)[^。！？\n]{0,20}?(加个|加一个|增加|新增|支持)[^。！？\n]{0,12}(参数|功能|选项|接口|按钮|开关)|"
    r"(希望|建议|期待)[^。！？\n]{0,24}(能|可以|支持|增加|加上|加个|新增|提供|上线|开放|自动)|"
    r"(需求|功能)建议|feature request|please (add|support)|would be (nice|great) (if|to)|"
    r"(有没有|是否有|有无|有)(计划|打算)(支持|增加|提供|推出|上线|出)|"
    r"any plans? (to|for)|(do|does) (you|qiniu) (plan|intend) to|on (your|the) roadmap|will (you|qiniu) (add|support|provide|offer)",
    re.I)
_BUG_REPORT = re.compile(
    r"(点|按)(了|击)?[^。！？\n]{0,12}(没|无)(有)?(任何)?(反应|响应)|"
    r"(页面|控制台|后台|按钮|界面)[^。！？\n]{0,12}(空白|白屏|打不开|卡死|卡住|报错|异常|崩溃|错乱|bug)|"
    r"崩溃|闪退|panic:|segmentation fault|sigsegv|\bcrash|\bbug\b|"
    # the console or a client app spinning forever, or failing a plain click with a server error
    r"(列表|页面|控制台|客户端|界面|browser)[^。！？\n]{0,12}(一直)?(转圈|加载中|loading)|"
    r"(点|提交|保存)[^。！？\n]{0,12}(弹出|报|返回|提示)[^。！？\n]{0,6}(50[0-4]|internal server error)|"
    r"(一直)?显示(为)?0|显示(错误|不正确|不对)|数据(是不是)?(出)?(问题|错误|不对|不一致|对不上)", re.I)
# Something staff started is stuck (「HTTPS配置一直显示 处理中」, 「实名认证…还在审核中」, 「配置一直显示排队中」): only
# staff can move it, whatever a past case says; asking how long it normally takes (「解冻中，正常要多久？」) is a
# question a past answer may settle.
_STUCK = re.compile(r"(一直|还|仍然?|始终)(都)?(是|显示|在|处于|卡在)?\s*[「“\"']?\s*(处理中|审核中|待审核|部署中|配置中|关机中|排队中|processing)"
                    r"|\b(still|stuck)\b[^.?!\n]{0,20}\b(processing|pending|in review|under review)\b", re.I)
# ... unless the customer asks how, or how long it normally takes, or whether their own step is wrong (「是不是哪里不对」:
# a past answer may settle it), and not for staff to look (「能帮忙看下卡在哪吗」, 「帮忙催一下」).
_ASKS_STAFF_TO_LOOK = re.compile(r"帮(忙|我)?(看|查|处理|催|推|加急)|麻烦(您|你们)?(看|查|处理)|加急|催一下|卡在哪")
# Sales, contracts and account changes: a person must act, whatever a past case says.
_BILLING_CHANGE = re.compile(r"(改成|改为|切换|更换|变更|换成)[^。！？\n]{0,8}(计费|付费|结算)")
# The customer asks staff to undo or switch off something of theirs for them (「能不能先帮我把 pic.… 切回http」): a
# request, even phrased 「能不能」; a free-certificate how-to sent to it, while the images were down, was graded harmful
# (the twelfth read). A change forward (「帮我把覆盖范围改成全球」) a past answer may still teach.
_DO_IT_FOR_ME = re.compile(r"(帮|替)(我|我们|忙)(先)?(把|将)[^。！？?\n]{0,40}?(切回|改回|关(掉|闭)|停(掉|用)|回退|回滚|恢复成|下线)")

# A case this close, below the answer threshold, is pointed at conditionally in a deferral (「如果您是指…」),
# and its resolution is shown to the agent as a hint.
RELATED_MATCH = 0.2
# A ticket naming no service term is still a Qiniu question when a past case comes this close.
OFF_TOPIC_MATCH = 0.05
# Qiniu's names, and its SDK calls' names: either places a ticket with Qiniu.
_QINIU = re.compile(r"七牛|qiniu|kodo|qshell|pili|dora|fusion"
                    r"|(?<![a-z])(?:resume_?uploader|form_?uploader|upload_?manager|bucket_?manager|put_?policy|up_?token)"
                    r"(?![a-z])", re.I)
# Someone asking for a job, not for support: the off-topic line points them at what this channel is for; a holding
# line promised a follow-up nobody would send (「你们七牛还招前端吗 想投个简历」, the twelfth read).
_JOB_SEEKING = re.compile(r"还招(人|聘)?(前端|后端|开发|工程师|实习|运营|销售|人)?吗|招(不招)?(实习生|应届生)|投(个|份|一下|一份)?简历|"
                          r"内推|hr\s*(的)?(邮箱|联系方式|电话)|are you hiring|job (opening|application)s?|internship", re.I)
_OTHER_COMPANY = re.compile(r"百度网盘|百度云盘|阿里云|aliyun|腾讯云|tencent\s*cloud|华为云|又拍云|upyun|金山云|京东云|"
                            r"火山引擎|volcengine|veimagex|ucloud|优刻得|网宿|白山云|天翼云|青云|qingcloud|google\s*cloud|digitalocean|"
                            r"\baws\b|amazon\s*s3|azure|cloudflare|网易云|微信支付|支付宝|淘宝|京东|拼多多|美团|滴滴|"
                            r"12306|携程|cos-[a-z]+-sdk|\boss\b|\bcos\b", re.I)
# Small talk about the support itself (「你们是机器人吗」, 「客服晚上几点下班」): a person asking who is there is greeted
# and asked what they need, never told their question is out of scope.
_ABOUT_SUPPORT = re.compile(r"机器人|真人|人工|客服|下班|上班|工作时间|在线时间|robot|\bbot\b|\bhuman\b|real person|anyone there|"
                            r"\b(any ?one|some ?one)\b[^.?!\n]{0,12}\bhelp\b", re.I)
# Terms that place a ticket within Qiniu's services; a ticket without any, and with no fitting case,
# is not a support question for this team.
SERVICE_TERMS = re.compile(
    r"七牛|控制台|工单|客服|技术支持|加速|回源|缓存|刷新|预取|域名|解析|备案|证书|存储|空间|对象|文件|上传|下载|外链|防盗链|鉴权|密钥|镜像|生命周期|归档|低频|转码|截图|水印|图片|视频|音频|直播|推流|拉流|点播|短信|签名|"
    r"模板|验证码|实时音视频|连麦|云主机|服务器|带宽|流量|请求数|计费|费用|扣费|账单|欠费|余额|充值|退款|发票|订单|套餐|资源包|优惠券|实名|认证|账号|帐号|登录|注册|子账号|邮箱|手机号|报错|错误|失败|异常|端口|域|配置|接口|回调|"
    r"网络|访问|境外|境内|海外|跨境|国外|国内|联通|电信|移动|线路|节点|延迟|卡顿|加载|播放|云存储|云服务|部署|迁移|"
    # ASCII terms as whole words: "shipment" is not "ip", "happy" not "api"
    r"(?<![a-z0-9])(qiniu|kodo|fusion|pili|dora|qshell|qrsctl|portal|cdn|cname|dns|ssl|https?|tls|bucket|token|ak|sk|accesskey|secretkey|api|sdk|s3|rtmp|hls|flv|m3u8|rtc|error|fail|timeout|http|ip|ssl|websocket|callback|bucket|region|zone)(?![a-z0-9])|"
    # the same in English prose: an English question about an account or an upload is a Qiniu question
    r"\b(accounts?|upload\w*|download\w*|storage|console|dashboard|invoices?|bills?|billing|refunds?|balance|recharge|"
    r"top[- ]?up|certificates?|cert|domains?|cach(e|ing)|refresh\w*|prefetch|origin|live[- ]?stream\w*|transcod\w*|"
    r"watermark\w*|thumbnails?|sms|password|log[- ]?in|sign[- ]?in|traffic|bandwidth|quota|pricing|subscription|"
    r"real[- ]?name|verification|objects?)\b", re.I)

@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one ticket, and why."""

    action: Action
    kind: Kind
    match: float                    # calibrated probability that the top case addresses the ticket
    threshold: float
    details: tuple[Detail, ...]     # what to ask the customer for: what this question needs and the ticket lacks
    fitting: tuple[Hit, ...] = ()   # the cases that address the ticket (empty unless kind == "fits")
    question: QuestionKind = "howto"
    related: Hit | None = None      # the closest case that does not fit, when close enough to point at
    # When no case of the ticket's area is that close, the closest of another (「费用异常」 whose answer is the CDN log
    # analysis a CDN traffic question needs): the agent's hint only, never pointed at in the customer's reply.
    elsewhere: Hit | None = None


# A customer closing the conversation: thanks, "solved", "got it", and nothing else.
_CLOSING = re.compile(
    r"(好的|好了|好滴|嗯+|ok(ay)?|可以了|行了|没(有)?问题了?|(问题)?(已经?)?(解决|弄好|搞定|处理好|好)了?|明白了?|知道了|收到了?|"
    r"谢谢|感谢|多谢|辛苦了?|thanks?|thankyou|thx|您|你|啦|了|哈+|哦|呀|的|啊|们|"
    # "Thanks a lot, that fixed it!"
    r"alot|somuch|verymuch|that|it|this|is|has|been|fixed|solved|sorted|works?|worked|now|great|perfect|cheers|all|good)+",
    re.I)


def is_closing(text: str) -> bool:
    """True when the customer only thanks or says the problem is solved: no question is left to answer."""
    core = _PUNCT.sub("", text)
    return bool(core) and bool(_CLOSING.fullmatch(core)) and bool(re.search(r"谢|感谢|解决|弄好|搞定|好了|thank|thx", core, re.I))


def is_vague(text: str) -> bool:
    """True when, greetings aside, the ticket says too little to answer (in English: three words or fewer that are
    not greetings, function words or a plea for help, as 「Hi, it is not working, can you help me?」)."""
    if len(_PUNCT.sub("", _EMPTY_TALK.sub("", text))) < 4:
        return True
    return writes_english(text) and len(content_words(_EMPTY_TALK_EN.sub(" ", text))) <= 3 and not about_services(text)


def is_vague_problem(text: str) -> bool:
    """A problem too vague to look into ("我的东西打不开了"): short, a symptom, and nothing it happens to."""
    core = _PUNCT.sub("", _EMPTY_TALK.sub("", text))
    return len(core) <= 12 and bool(_VAGUE_SYMPTOM.search(core)) and not _SPECIFIC.search(core)


def about_services(text: str) -> bool:
    return bool(SERVICE_TERMS.search(text))


# Where the customer's own machines run says nothing about what the ticket is about: 「服务器在阿里云华东」 beside a
# question on Qiniu's Node.js SDK once got the off-topic refusal.
_HOSTED_AT = re.compile(r"(?:服务器|主机|机器|源站|服务|应用|业务)(?:是|都)?(?:在|用的?|放在|部署在|跑在)\s*(?:阿里云|腾讯云|华为云|aws|azure)"
                        r"|(?:阿里云|腾讯云|华为云|aws|azure)\s*(?:的)?\s*(?:服务器|主机|ecs|cvm|ec2|机器)", re.I)


def other_company(text: str) -> bool:
    """About another company's product, and not about Qiniu's."""
    return bool(_OTHER_COMPANY.search(_HOSTED_AT.sub(" ", text))) and not _QINIU.search(text)


def asks_staff(whole: str) -> bool:
    """The ticket itself asks for something only staff can do (a back-office action, a sales contact, a billing
    change, a stuck operation to look at), whatever the past cases say."""
    return bool(needs_staff(whole) or SALES_CONTACT.search(whole) or _BILLING_CHANGE.search(whole) or _DO_IT_FOR_ME.search(whole)
                or (_STUCK.search(whole) and (_ASKS_STAFF_TO_LOOK.search(whole) or not asks_how(whole))))


def decide(ticket: Ticket, hits: Sequence[Hit], threshold: float) -> Verdict:
    """The verdict for ``ticket`` given its retrieved ``hits`` (ordered by match probability)."""
    whole = customer_text(ticket)
    match = float(hits[0].match) if hits and hits[0].match is not None else 0.0
    question = question_kind(whole)
    # A case about another client platform is no answer, whatever its match (an iOS fix for an Android question).
    above = tuple(h for h in hits if h.match is not None and h.match >= threshold
                  and not other_platform(whole, f"{h.title}\n{h.case.question}"))
    # No feedback case is the sole basis of an answer: copies of a phishing reply, approved by a careless
    # reviewer, once became one (issue 24). Beside a fitting dataset case it may be shown; never alone.
    fitting = above if any(h.case.provenance is None for h in above) else ()
    # The closest by match, not the first in the ranking: the ranker orders by problem, the match rates the fit.
    close = [h for h in hits if h.match is not None and RELATED_MATCH <= h.match and h.case.provenance is None
             and h not in fitting]
    near = max((h for h in close if same_area(whole, f"{h.title}\n{h.case.question}", h.answer)),
               key=lambda h: h.match or 0.0, default=None)
    elsewhere = max(close, key=lambda h: h.match or 0.0, default=None) if near is None else None

    def verdict(action: Action, kind: Kind, fit: tuple[Hit, ...] = (), details: tuple[Detail, ...] = ()) -> Verdict:
        deferred = kind in ("no_fit", "no_cases")
        return Verdict(action, kind, round(match, 4), threshold, details, fit, question,
                       near if deferred else None, elsewhere if deferred else None)

    if is_closing(ticket.query_text):
        return verdict("ask_for_info", "closing")  # thanked, or solved: a short closing line, nothing asked
    if is_vague(whole):
        return verdict("ask_for_info", "vague")  # a greeting: asked what we can help with, nothing else
    if is_vague_problem(whole) and not fitting:
        return verdict("ask_for_info", "vague", details=(GOAL,))
    if asks_staff(whole):
        return verdict("escalate", "staff", fitting, details_for(whole, staff=True))
    if _FEATURE_REQUEST.search(whole):
        return verdict("escalate", "feature_request")
    if _BUG_REPORT.search(whole) and not fitting:
        return verdict("escalate", "bug_report", details=details_for(whole, "error"))
    if other_company(whole) or (_JOB_SEEKING.search(whole) and not fitting):
        return verdict("ask_for_info", "off_topic")
    if fitting:
        # A past answer that was itself a back-office action fits only as a hand-over.
        if classify_reply(fitting[0].answer) == "escalate":
            return verdict("escalate", "staff", fitting, details_for(whole, staff=True))
        return verdict("answer", "fits", fitting)
    # Refusing a question about Qiniu's services as off-topic is worse than asking: only a ticket that names
    # nothing of the services and that no past case comes near is declined.
    if _ABOUT_SUPPORT.search(whole) and not about_services(_ABOUT_SUPPORT.sub(" ", whole)) and match < RELATED_MATCH:
        return verdict("ask_for_info", "vague")  # greeted and asked what they need
    if not about_services(whole) and match < OFF_TOPIC_MATCH:
        return verdict("ask_for_info", "off_topic")
    return verdict("ask_for_info", "no_fit" if hits else "no_cases", details=details_for(whole, question))


@dataclass(frozen=True)
class AnswerPolicy:
    """The answer policy: it owns the threshold (``rag.pipeline`` sets it from the match model it was fitted
    with, or from ``RAG_ANSWER_THRESHOLD``) and decides every ticket's verdict with it."""

    threshold: float

    def decide(self, ticket: Ticket, hits: Sequence[Hit]) -> Verdict:
        return decide(ticket, hits, self.threshold)
