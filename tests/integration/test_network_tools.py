"""crewai-tools' network tools in Kasal: built as crewai-tools builds them once their keys
are in the environment, run by the offline model against a real HTTP server, and refused
(recorded as a failed call) where a URL leads to a private or reserved address."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.crewai.engine import CrewAIEngine
from adapters.crewai.tool_names import tool_config_problem, tool_credentials_problem
from adapters.crewai.tools import build_tools
from adapters.crewai.workspace import Workspace

from .support import RecordingHooks, agent, crew, task

PAGE = b"<html><body><h1>Owls</h1><p>Owls hunt at night.</p><script>x()</script></body></html>"


class _Server(http.server.ThreadingHTTPServer):
    requests: list[tuple[str, str, dict[str, str], bytes]]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def _record(self, body: bytes = b"") -> None:
        self.server.requests.append((self.command, self.path, dict(self.headers), body))

    def do_GET(self) -> None:
        self._record()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        if self.path == "/endless":  # more than any page Kasal reads
            for _ in range(7 * 16):
                self.wfile.write(b"<p>" + b"owl " * 16_384 + b"</p>")
            return
        self.wfile.write(PAGE)

    def do_POST(self) -> None:
        self._record(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"organic": [
            {"title": "Owl - Wikipedia", "link": "https://en.wikipedia.org/wiki/Owl",
             "snippet": "Owls are birds of prey.", "position": 1}]}).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def engine(tmp_path: Path) -> CrewAIEngine:
    return CrewAIEngine(max_retries=1, retry_base_delay=0.01, retry_max_delay=0.05,
                        workspaces=tmp_path / "workspaces")


def _url(server: _Server, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def test_an_agent_reads_a_web_page_with_scrape_website(
    engine: CrewAIEngine, server: _Server, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the test's server is on loopback, which crewai-tools refuses by default (next test):
    # its escape hatch is the operator's setting, set here for this test only
    monkeypatch.setenv("CREWAI_TOOLS_ALLOW_UNSAFE_PATHS", "true")
    agents = {"r": agent("Reader", tools=("scrape_website",))}
    spec = crew(task("read", f"Summarise {_url(server, '/owls.html')} for a child.", "r"),
                agents=("r",))
    hooks = RecordingHooks()

    result = engine.run(spec, agents, {}, hooks)

    [used] = hooks.tools
    assert used.tool == "read_website_content" and used.error is None
    assert json.loads(used.tool_input) == {"website_url": _url(server, "/owls.html")}
    assert used.output == ("The following text is scraped website content:\n\n"
                           "Owls Owls hunt at night.")  # crewai-tools' own rendering
    assert [(r[0], r[1]) for r in server.requests] == [("GET", "/owls.html")]
    assert "Owls hunt at night." in result.output


def test_scrape_website_reads_no_more_than_its_page_limit(
    engine: CrewAIEngine, server: _Server, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CREWAI_TOOLS_ALLOW_UNSAFE_PATHS", "true")  # the loopback server
    agents = {"r": agent("Reader", tools=("scrape_website",))}
    spec = crew(task("read", f"Summarise {_url(server, '/endless')} please.", "r"),
                agents=("r",))
    hooks = RecordingHooks()

    engine.run(spec, agents, {}, hooks)

    [used] = hooks.tools
    assert used.error is not None and "exceeds the 5242880 byte limit" in used.error, used


@pytest.mark.parametrize("where", ["loopback", "metadata"])
def test_scrape_website_never_reaches_a_private_address(
    engine: CrewAIEngine, server: _Server, monkeypatch: pytest.MonkeyPatch, where: str,
) -> None:
    monkeypatch.delenv("CREWAI_TOOLS_ALLOW_UNSAFE_PATHS", raising=False)
    monkeypatch.delenv("ALLOW_UNSAFE_PATHS", raising=False)
    url = _url(server, "/admin") if where == "loopback" else \
        "http://169.254.169.254/latest/meta-data/"
    agents = {"r": agent("Reader", tools=("scrape_website",))}
    spec = crew(task("read", f"Summarise {url} please.", "r"), agents=("r",))
    hooks = RecordingHooks()

    engine.run(spec, agents, {}, hooks)

    [used] = hooks.tools
    assert used.error is not None and "private/reserved IP" in used.error, used
    assert server.requests == []


def test_serper_search_runs_with_its_key_as_crewai_tools_runs_it(
    tmp_path: Path, server: _Server, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SERPER_API_KEY", "test-key-123")
    [tool] = build_tools(["serper_search"], Workspace(tmp_path, "acme"))
    tool.base_url = _url(server, "")  # type: ignore[attr-defined]  # serper.dev's stand-in
    found = tool.run(search_query="owls")
    [(method, path, headers, body)] = server.requests
    assert (method, path) == ("POST", "/search")
    assert headers["X-API-KEY"] == "test-key-123"
    assert json.loads(body)["q"] == "owls"
    assert "Owls are birds of prey." in json.dumps(found)


def test_a_network_tool_is_not_built_without_its_key(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name, var in [("serper_search", "SERPER_API_KEY"), ("brave_search", "BRAVE_API_KEY"),
                      ("serply_search", "SERPLY_API_KEY")]:
        monkeypatch.delenv(var, raising=False)
        problem = tool_credentials_problem(name)
        assert problem is not None and var in problem
        with pytest.raises(ValueError, match=var):
            build_tools([name], Workspace(tmp_path, "acme"))
        monkeypatch.setenv(var, "k")
        assert tool_credentials_problem(name) is None
        assert build_tools([name], Workspace(tmp_path, "acme"))[0].name
    assert tool_credentials_problem("scrape_website") is None  # needs no key


@pytest.mark.parametrize(("url", "ok"), [
    ("https://example.com/a", True), ("http://example.com", True), ("ftp://example.com", False),
    ("file:///etc/passwd", False), ("example.com", False), ("http://[::1", False),
])
def test_a_configured_website_url_must_be_http(url: str, ok: bool) -> None:
    problem = tool_config_problem("scrape_website", {"website_url": url})
    assert (problem is None) is ok, problem
