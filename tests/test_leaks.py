"""The independent leak and defect detector: learned from a corpus, sharing no code with the guards."""

import ast
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.records import Case, Turn
from rag.score.leaks import LeakDetector, identifier_candidates


def _case(cid: str, question: str, *agent: str) -> Case:
    turns = (Turn("customer", question),) + tuple(Turn("agent", a) for a in agent)
    return Case(cid, f"title {cid}", "CDN", "其他", (), question, turns, None, "f.md", 1)


CORPUS = [
    _case("a", "我的域名 img.shop-alpha.xyz 访问报错，订单号 66dff107b02c588c54f7950c",
          "您好，您的任务id没有对应任务的http://api.qiniu.com/status/get/prefop?id=z0.01z012d4buxkbfc2jy",
          "参考文档：https://developer.qiniu.com/fusion/kb/1325/refresh-the-cache", "您说的自主生成是什么意思呢？"),
    _case("b", "手机 138-1234-5678 收不到验证码，空间 photo-prod-01", "请联系 ops@shop-beta.io 或拨打 010-87654321",
          "参考文档：https://developer.qiniu.com/fusion/kb/1325/refresh-the-cache"),
    _case("c", "证书 CAA 记录怎么写", "CAA 记录包含 digicert.com", "参考文档：https://developer.qiniu.com/ssl"),
    _case("d", "CAA 报错", "CAA 记录包含 digicert.com 即可"),
]


def test_candidates_cover_hosts_of_any_tld_emails_phones_ids_buckets_and_query_values():
    found = identifier_candidates(
        "访问 https://cdn.example.museum/a?id=z0.abc123&e=1700000000 失败，邮箱 a.b@corp.co.uk，"
        "电话 +86 138 1234 5678、156****1964、400-820-1234，桶 photo-prod-01，host bare.example.travel，"
        "文件 photo.png，id wL4X34YWB6LaV_wX"
    )
    assert {"cdn.example.museum", "z0.abc123", "1700000000", "a.b@corp.co.uk", "+86 138 1234 5678",
            "156****1964", "400-820-1234", "photo-prod-01", "bare.example.travel", "wl4x34ywb6lav_wx"} <= found
    assert "photo.png" not in found  # a file name, not a host


def test_identifiers_of_one_case_are_owned_shared_ones_are_public():
    det = LeakDetector.from_cases(CORPUS)
    assert det.owners["img.shop-alpha.xyz"] == "a"
    assert det.owners["ops@shop-beta.io"] == "b" and det.owners["photo-prod-01"] == "b"
    assert "digicert.com" not in det.owners  # agents of two cases wrote it: public
    assert "developer.qiniu.com" not in det.owners


def test_a_draft_for_another_ticket_leaks_them_but_not_the_tickets_own():
    det = LeakDetector.from_cases(CORPUS)
    draft = "您好，参考 http://api.qiniu.com/status/get/prefop?id=z0.01z012d4buxkbfc2jy 以及 138-1234-5678"
    # in this small corpus even api.qiniu.com occurs in one dialogue only
    assert set(det.leaks(draft, "新的工单", case_id="c")) == {"api.qiniu.com", "z0.01z012d4buxkbfc2jy", "138-1234-5678"}
    assert det.leaks(draft, "新的工单", case_id="a") == ["138-1234-5678"]  # the case's own is no leak
    assert det.leaks("您好，img.shop-alpha.xyz 已配置", "我的域名是 img.shop-alpha.xyz", case_id=None) == []
    assert det.leaks("CAA 记录包含 digicert.com", "新的工单") == []


def test_defects_are_counted():
    det = LeakDetector.from_cases(CORPUS)
    assert det.defects("您好，参考文档：https://developer.qiniu.com/ssl 即可。") == []
    kinds = " ".join(det.defects(
        "您好，[REDACTED_PATH] 参考文档：https:\n参考 【您的域名】 这个demo\n您说的自主生成是什么意思呢？\n请用7.13.27.14.0版本"
    ))
    assert det.defects("参考文档：https://developer.qiniu.com/fusion/kb/13") == ["cut link https://developer.qiniu.com/fusion/kb/13"]
    assert det.defects("参考文档：https://developer.qiniu.com/fusion/kb/1325/refresh-the-cache。") == []
    for kind in ("redaction token", "cut link", "slot in place of a link", "question from another conversation",
                 "version numbers run together"):
        assert kind in kinds
    assert det.defects("【您的域名】这个域名找回到您的账号") == []  # a slot where the customer's detail belongs


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_checked_without_error(text):
    det = LeakDetector.from_cases(CORPUS)
    findings = det.check(text, "", None)
    assert isinstance(findings.leaks, tuple) and isinstance(findings.defects, tuple)


def test_shares_no_code_with_the_guards_it_grades():
    tree = ast.parse(Path("rag/score/leaks.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not imported & {"rag.draft.guards", "rag.text.identifiers", "rag.text.links", "rag.draft.sentences"}
