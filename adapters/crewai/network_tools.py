"""crewai-tools' network tools, built as crewai-tools builds them, once their credentials
are in this process's environment (``tool_names.tool_credentials_problem``).

They reach the network (the model decides what to search or fetch): a run that uses them is
not offline. ``ScrapeWebsiteTool`` fetches through crewai-tools' ``safe_get``, which refuses
a URL (or a redirect, or a DNS answer) that leads to a private, loopback, link-local or
reserved address, so an agent cannot reach the services beside Kasal; crewai-tools'
``CREWAI_TOOLS_ALLOW_UNSAFE_PATHS`` escape hatch lifts that, and is the operator's to set.
"""

from __future__ import annotations

from crewai.tools import BaseTool


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
    from crewai_tools import ScrapeWebsiteTool

    return ScrapeWebsiteTool(website_url=website_url) if website_url else ScrapeWebsiteTool()
