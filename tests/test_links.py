from pathlib import Path

import pytest

from rag.text.links import clean_link, find_links, raw_links, separate_links
from rag.settings import PROJECT_ROOT

CORPUS = PROJECT_ROOT / "data" / "qiniu_support_tickets_part15.md"
TEST_DATA = Path(__file__).parent / "data"


def _table():
    rows = []
    for line in (TEST_DATA / "corpus_links.tsv").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        raw, clean = line.split("\t")
        rows.append((raw, None if clean == "None" else clean))
    return rows


TABLE = _table()


def test_the_table_covers_every_link_in_the_corpus():
    found = set(raw_links(CORPUS.read_text(encoding="utf-8")))
    assert found == {raw for raw, _ in TABLE}


@pytest.mark.parametrize("raw, clean", TABLE)
def test_link_table(raw, clean):
    assert clean_link(raw) == clean


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("https://portal.qiniu.com/certificate/apply2.补全信息", "https://portal.qiniu.com/certificate/apply"),
        ("https://developer.qiniu.com/fusion/api/1229/cache-refreshTip", "https://developer.qiniu.com/fusion/api/1229/cache-refresh"),
        ("https://developer.qiniu.com/ssl/manual/3667/ssl-certificate-of-free-dns-validation-guide4.",
         "https://developer.qiniu.com/ssl/manual/3667/ssl-certificate-of-free-dns-validation-guide"),
        ("https://portal.qiniu.com/kodo/bucketCDN：https://x", "https://portal.qiniu.com/kodo/bucket"),
        ("https://portal.qiniu.com/financial/summary查看实时消费明细", "https://portal.qiniu.com/financial/summary"),
        ("https://portal.qiniu.com/cdn/statistics/log/top如有部分IP", "https://portal.qiniu.com/cdn/statistics/log/top"),
        ("https://developer.qiniu.com/fusion/kb/1325/refresh-the-cache-and-the-effect-of-time方法1:",
         "https://developer.qiniu.com/fusion/kb/1325/refresh-the-cache-and-the-effect-of-time"),
        ("https://example.com/[REDACTED_PATH]是这个", "https://example.com/[REDACTED_PATH]"),
        ("https://developer.qiniu.com/kodo/1201/access-token#1", "https://developer.qiniu.com/kodo/1201/access-token#1"),
    ],
)
def test_issue_examples(raw, clean):
    assert find_links(raw)[0] == clean


def test_customer_links_keep_their_case_and_query():
    assert clean_link("https://portal.qiniu.com/kodo/bucket/setting?bucketName=minigameCDN") == (
        "https://portal.qiniu.com/kodo/bucket/setting?bucketName=minigameCDN"
    )


def test_separate_links_unglues_text():
    assert separate_links("见https://portal.qiniu.com/certificate/apply2.补全信息") == (
        "见https://portal.qiniu.com/certificate/apply 2.补全信息"
    )
    assert separate_links("见https://portal.qiniu.com/cdn/domain。") == "见https://portal.qiniu.com/cdn/domain 。"
