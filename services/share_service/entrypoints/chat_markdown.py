"""Chat content as HTML for the shared-chat page. The content is hostile: raw HTML is escaped,
links go only to http, https and mailto, and images become links (the page loads nothing remote)."""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

SAFE_SCHEMES = ("http://", "https://", "mailto:")
LINK_REL = "noopener noreferrer nofollow"
ALIGN_STYLES = {f"text-align:{side}": f"align-{side}" for side in ("left", "center", "right")}


class ChatMarkdown(MarkdownIt):
    """CommonMark with tables and strikethrough, line breaks kept as a chat shows them."""

    def __init__(self) -> None:
        super().__init__("commonmark", {"html": False, "breaks": True, "linkify": False})
        self.enable(["table", "strikethrough"])
        self.add_render_rule("link_open", _link_open)
        self.add_render_rule("image", _image_as_link)
        for cell in ("th_open", "td_open"):
            self.add_render_rule(cell, _cell_open)

    def validateLink(self, url: str) -> bool:
        # A link that fails this is left as its text: no javascript:, data:, relative URLs.
        return url.strip().lower().startswith(SAFE_SCHEMES)


def _link_open(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    tokens[idx].attrSet("rel", LINK_REL)
    return renderer.renderToken(tokens, idx, options, env)


def _image_as_link(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    source = str(token.attrGet("src") or "")
    alt = renderer.renderInlineAsText(token.children or [], options, env) or source
    return (
        f'<a class="image-link" href="{escapeHtml(source)}" rel="{LINK_REL}">'
        f"Image: {escapeHtml(alt)}</a>"
    )


def _cell_open(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # The page's CSP allows no inline style attributes: alignment becomes a class.
    token = tokens[idx]
    align = ALIGN_STYLES.get(str(token.attrGet("style") or ""))
    if align is not None:
        token.attrs.pop("style", None)
        token.attrSet("class", align)
    return renderer.renderToken(tokens, idx, options, env)
