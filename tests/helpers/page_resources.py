"""What an HTML page would load, and whether its own Content-Security-Policy allows it: the
browser's checks, read off the HTML with the standard library (no browser needed).

`page_resources(text)` finds every URL the page would fetch: element attributes (img, script,
link, iframe, object, embed, media, SVG image/use/feImage, input type=image, meta refresh,
base) and CSS `url(...)` / `@import` in <style> blocks and style attributes. `csp_allows`
applies the page's policy (from its <meta http-equiv>) the way CSP Level 3 does for the
directives and source expressions a static page can meet: the fetch directive for the kind of
resource, falling back to default-src; 'none', '*', 'self', scheme sources (`data:`) and host
sources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

# (tag, attribute) -> the CSP directive that governs fetching it
URL_ATTRIBUTES = {
    ("img", "src"): "img-src", ("img", "srcset"): "img-src",
    ("source", "src"): "media-src", ("source", "srcset"): "img-src",
    ("video", "src"): "media-src", ("video", "poster"): "img-src", ("audio", "src"): "media-src",
    ("track", "src"): "media-src",
    ("script", "src"): "script-src",
    ("iframe", "src"): "frame-src", ("frame", "src"): "frame-src",
    ("object", "data"): "object-src", ("embed", "src"): "object-src",
    ("input", "src"): "img-src",
    ("image", "href"): "img-src", ("image", "xlink:href"): "img-src",
    ("feimage", "href"): "img-src", ("feimage", "xlink:href"): "img-src",
    ("use", "href"): "img-src", ("use", "xlink:href"): "img-src",
}
LINK_DIRECTIVES = {"stylesheet": "style-src", "icon": "img-src", "preload": "default-src",
                   "prefetch": "default-src", "manifest": "manifest-src",
                   "modulepreload": "script-src"}
CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)|@import\s+(['"])(.*?)\3""", re.I | re.S)


@dataclass
class Resource:
    tag: str
    directive: str  # the CSP fetch directive it falls under
    url: str


@dataclass
class Page:
    csp: list[str] = field(default_factory=list)  # every policy the page declares
    csp_position: int | None = None  # index among resources at which the first CSP came
    resources: list[Resource] = field(default_factory=list)
    figures: list[list[str]] = field(default_factory=list)  # child tags of each <figure>
    scripts: int = 0  # <script> elements (inline or not)


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.page, self.in_style, self.figure_depth = Page(), False, []

    def handle_starttag(self, tag, attrs):
        attrs = {k.lower(): v or "" for k, v in attrs}
        if self.figure_depth:
            self.figure_depth[-1].append(tag)
        if tag == "figure":
            self.page.figures.append([])
            self.figure_depth.append(self.page.figures[-1])
        if tag == "script":
            self.page.scripts += 1
        if tag == "style":
            self.in_style = True
        if tag == "meta":
            self._meta(attrs)
        if tag == "link" and attrs.get("href"):
            rels = attrs.get("rel", "").lower().split()
            directive = next((LINK_DIRECTIVES[r] for r in rels if r in LINK_DIRECTIVES),
                             "default-src")
            self._add(tag, directive, attrs["href"])
        if tag == "base" and attrs.get("href"):
            self._add(tag, "base-uri", attrs["href"])
        for name, value in attrs.items():
            directive = URL_ATTRIBUTES.get((tag, name))
            if directive and value:
                for url in _srcset(value) if name == "srcset" else [value]:
                    self._add(tag, directive, url)
            if name == "style":
                self._css(tag, value)

    def handle_endtag(self, tag):
        if tag == "style":
            self.in_style = False
        if tag == "figure" and self.figure_depth:
            self.figure_depth.pop()

    def handle_data(self, data):
        if self.in_style:
            self._css("style", data)

    def _meta(self, attrs):
        equiv = attrs.get("http-equiv", "").lower()
        if equiv == "content-security-policy":
            if self.page.csp_position is None:
                self.page.csp_position = len(self.page.resources)
            self.page.csp.append(attrs.get("content", ""))
        elif equiv == "refresh" and "url=" in attrs.get("content", "").lower():
            url = attrs["content"].split("=", 1)[1].split(";")[-1].strip()
            self._add("meta", "navigate", url.split("=", 1)[-1].strip("'\" "))

    def _css(self, tag, text):
        for m in CSS_URL.finditer(text):
            url = m.group(2) if m.group(2) is not None else m.group(4)
            self._add(tag, "style-src" if m.group(4) is not None else "img-src", url)

    def _add(self, tag, directive, url):
        self.page.resources.append(Resource(tag, directive, url.strip()))


def _srcset(value: str) -> list[str]:
    return [part.strip().split()[0] for part in value.split(",") if part.strip()]


def parse_page(text: str) -> Page:
    parser = _Parser()
    parser.feed(text)
    parser.close()
    return parser.page


def parse_csp(policy: str) -> dict[str, list[str]]:
    """directive -> its source expressions (the first occurrence of a directive wins)."""
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words and words[0].lower() not in out:
            out[words[0].lower()] = words[1:]
    return out


def csp_allows(policy: str, directive: str, url: str, page_url: str = "file:///report.html") -> bool:
    """Whether `policy` lets the page at `page_url` fetch `url` under `directive`."""
    rules = parse_csp(policy)
    if directive in ("base-uri", "navigate"):  # not fetches: default-src does not cover them
        sources = rules.get(directive)
    else:
        sources = rules.get(directive, rules.get("default-src"))
    if sources is None:
        return True  # nothing in the policy restricts it
    return any(_matches(source, url, page_url) for source in sources)


def _matches(source: str, url: str, page_url: str) -> bool:
    source_l = source.lower()
    target = urlsplit(url)
    scheme = target.scheme.lower()
    if not scheme:  # relative: resolved against the page
        return _matches(source, page_url, page_url) if source_l == "'self'" else False
    if source_l == "'none'" or source_l.startswith("'unsafe-") or source_l.startswith("'nonce-"):
        return False  # keywords about inline code, not about fetching a URL
    if source_l == "'self'":
        here = urlsplit(page_url)
        return (scheme, target.netloc) == (here.scheme, here.netloc) and scheme not in ("data",
                                                                                      "blob")
    if source_l == "*":  # any URL except data:, blob: and filesystem: (CSP3)
        return scheme not in ("data", "blob", "filesystem")
    if re.fullmatch(r"[a-z][a-z0-9+.-]*:", source_l):  # a scheme source
        return scheme == source_l[:-1]
    host = urlsplit(source if "//" in source else f"//{source}")
    if host.scheme and host.scheme.lower() != scheme:
        return False
    pattern = (host.hostname or "").lower()
    name = (target.hostname or "").lower()
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return bool(pattern) and name == pattern


def blocked_or_foreign(text: str) -> list[str]:
    """Why the page is not a self-contained report whose every figure shows: empty when all is
    well. Each reason names the resource."""
    page = parse_page(text)
    problems = []
    if len(page.csp) != 1:
        problems.append(f"{len(page.csp)} Content-Security-Policy meta tags (want 1)")
        return problems
    if page.csp_position:
        problems.append("the CSP comes after a resource it should govern")
    policy = page.csp[0]
    if page.scripts:
        problems.append(f"{page.scripts} <script> elements")
    for r in page.resources:
        if r.tag != "img" or r.directive != "img-src":
            problems.append(f"the page loads a {r.directive} resource from <{r.tag}>: {r.url[:80]}")
        elif not r.url.lower().startswith("data:image/"):
            problems.append(f"an <img> that is not an inlined image: {r.url[:80]}")
        if not csp_allows(policy, r.directive, r.url):
            problems.append(f"the page's CSP ({policy}) blocks <{r.tag}> {r.url[:60]}")
    for i, children in enumerate(page.figures):
        if children.count("img") != 1 and "svg" not in children:
            problems.append(f"figure {i} holds {children.count('img')} <img> (want 1, or an "
                            "inline <svg>)")
    return problems
