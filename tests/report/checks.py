"""What every report must be: well-formed HTML, every picture embedded (a data: URI holding a
PNG), every section present."""

import base64
from html.parser import HTMLParser

VOID = {"meta", "img", "br", "hr", "input", "link"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# marks the page when every image has loaded with a size (a broken image has naturalWidth 0)
IMAGE_CHECK = (
    "<script>window.addEventListener('load', () => { const bad = [...document.images].filter("
    "i => !i.complete || i.naturalWidth === 0).length; document.body.setAttribute('data-images', "
    "document.images.length + ' ' + bad); });</script>"
)


class Page(HTMLParser):
    def __init__(self, text: str):
        super().__init__()
        self.stack, self.ids, self.images, self.links, self.errors = [], set(), [], [], []
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed {self.stack}")

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "a" and attrs.get("href", "").endswith(".html"):
            self.links.append(attrs["href"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def check_page(text: str, sections) -> Page:
    page = Page(text)
    assert not page.errors, page.errors[:5]
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    missing = [anchor for anchor, _ in sections if anchor not in page.ids]
    assert not missing, missing
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), src[:60]
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG_MAGIC)
    assert 'src="http' not in text and "<script" not in text  # opens offline, no server
    return page
