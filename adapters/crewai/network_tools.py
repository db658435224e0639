"""crewai-tools' network tools, built as crewai-tools builds them, once their credentials
are in this process's environment (``tool_names.tool_credentials_problem``).

They reach the network (the model decides what to search or fetch): a run that uses them is
not offline. ``ScrapeWebsiteTool`` fetches through crewai-tools' ``safe_get``, which refuses
a URL (or a redirect, or a DNS answer) that leads to a private, loopback, link-local or
reserved address, so an agent cannot reach the services beside Kasal; crewai-tools'
``CREWAI_TOOLS_ALLOW_UNSAFE_PATHS`` escape hatch lifts that, and is the operator's to set.
Kasal's ``scrape_website`` refuses a page over ``MAX_PAGE_BYTES`` as it streams in
(``safe_get_bounded``: crewai-tools' own tool would read an endless page into memory), and
renders the rest as the crewai-tools tool does.
"""

from __future__ import annotations

import re
from typing import Any

from crewai.tools import BaseTool

MAX_PAGE_BYTES = 5 * 1024 * 1024


def serper_search() -> BaseTool:
    from crewai_tools import SerperDevTool

    return SerperDevTool()


def brave_search() -> BaseTool:
    from crewai_tools import BraveSearchTool

    return BraveSearchTool()


def serply_search() -> BaseTool:
    from crewai_tools import SerplyWebSearchTool

    return SerplyWebSearchTool()


def scrape_website(website_url: str | None = None) -> BaseTool:
    from bs4 import BeautifulSoup
    from crewai_tools import ScrapeWebsiteTool
    from crewai_tools.security.safe_requests import safe_get_bounded

    class BoundedScrapeWebsiteTool(ScrapeWebsiteTool):
        def _run(self, **kwargs: Any) -> Any:
            url: str | None = kwargs.get("website_url", self.website_url)
            if url is None:
                raise ValueError("Website URL must be provided.")
            body, _, _ = safe_get_bounded(url, max_bytes=MAX_PAGE_BYTES, timeout=15,
                                          headers=self.headers)
            text = "The following text is scraped website content:\n\n"
            text += BeautifulSoup(body, "html.parser").get_text(" ")
            text = re.sub("[ \t]+", " ", text)
            return re.sub("\\s+\n\\s+", "\n", text)

    if website_url:
        return BoundedScrapeWebsiteTool(website_url=website_url)
    return BoundedScrapeWebsiteTool()
