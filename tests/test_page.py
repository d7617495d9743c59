"""The agents' page as files: no inline script or style, so the Content-Security-Policy coming for the main page
(script-src 'self', style-src 'self') cannot break it. The page itself is tested in Chromium (tests/test_web.py)."""

import re
from html.parser import HTMLParser

from rag.settings import PROJECT_ROOT

STATIC = PROJECT_ROOT / "rag" / "service" / "static"


def test_the_page_has_no_inline_script_or_style():
    html = (STATIC / "index.html").read_text(encoding="utf-8")

    class Inline(HTMLParser):
        found: list[str] = []

        def handle_starttag(self, tag, attrs):
            names = {k for k, _ in attrs}
            if tag == "style" or (tag == "script" and "src" not in names):
                self.found.append(tag)
            self.found += [k for k in names if k == "style" or k.startswith("on")]

        def handle_data(self, data):
            if self.lasttag == "script" and data.strip():
                self.found.append("script body")

    parser = Inline()
    parser.feed(html)
    assert parser.found == []
    assert re.search(r"<script src=\"/static/app\.js\"", html) and 'href="/static/app.css"' in html


def test_the_script_never_writes_markup_or_posts_to_any_origin():
    """Server and case text reach the page as text nodes only, and the draft is posted to one origin, never "*"."""
    js = (STATIC / "app.js").read_text(encoding="utf-8")
    assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", js)
    assert "postMessage(" in js and not re.search(r"postMessage\([^;]*[\"']\*[\"']", js)


def test_embed_origins_are_exact_origins_never_a_wildcard(monkeypatch):
    import pytest

    from rag.errors import ConfigError
    from rag.settings import load_settings

    assert load_settings(service={"embed_origins": ("https://desk.example.com", "http://127.0.0.1:8080")}).service.embed_origins == (
        "https://desk.example.com", "http://127.0.0.1:8080")
    for bad in ("*", "https://*.example.com", "https://desk.example.com/", "desk.example.com", "https://Desk.example.com"):
        with pytest.raises(ConfigError, match=r"RAG_EMBED_ORIGINS \(service.embed_origins\): .* is not an origin"):
            load_settings(service={"embed_origins": (bad,)})
    monkeypatch.setenv("RAG_EMBED_ORIGINS", '["https://desk.example.com"]')
    assert load_settings().service.embed_origins == ("https://desk.example.com",)
