"""Open a local HTML page in the system's headless Chromium with the network off and report what its charts drew.

A page may load `file:` URLs only: every other request is aborted and recorded, and the browser
context is offline as well. Vega charts are found the way the report embeds them: each
`<script class="vega-spec" data-target="fig-NAME">` renders into the element with id `fig-NAME`.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Route

# Debian's chromium package; Playwright's own browser download does not work on these machines.
CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium tries Google's hosts at every start.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Per figure name (target id without "fig-"): the number of data-mark items (points, line paths,
# bars, ...) drawn in its SVG; axes, legends and titles are not counted.
MARK_COUNTS_JS = """() => Object.fromEntries(Array.from(document.querySelectorAll("script.vega-spec"), spec => {
  const target = document.getElementById(spec.dataset.target);
  const marks = target === null ? 0 : target.querySelectorAll("svg .role-mark > *").length;
  return [spec.dataset.target.replace(/^fig-/, ""), marks];
}))"""
ALL_DRAWN_JS = f"() => Object.values(({MARK_COUNTS_JS})()).every(marks => marks > 0)"
# Per figure name: every text its SVG draws (facet headers, axis labels, legends); a panel's dataset is among them.
TEXTS_JS = """() => Object.fromEntries(Array.from(document.querySelectorAll("script.vega-spec"), spec => {
  const target = document.getElementById(spec.dataset.target);
  const labels = target === null ? [] : target.querySelectorAll("svg text");
  return [spec.dataset.target.replace(/^fig-/, ""), Array.from(labels, label => label.textContent)];
}))"""
# Playwright's default viewport, the width of a common laptop screen.
VIEWPORT = {"width": 1280, "height": 720}


class BrowserMissing(RuntimeError):
    """Chromium or the Playwright driver is not installed."""


@dataclass(frozen=True)
class PageRender:
    """What a page did in the browser: marks drawn per figure, and every error, warning and blocked request."""

    marks: dict[str, int]
    texts: dict[str, list[str]]
    scroll_width: int
    console_errors: list[str]
    console_warnings: list[str]
    page_errors: list[str]
    blocked_requests: list[str]

    @property
    def figures(self) -> set[str]:
        """Every figure the page has a spec for."""
        return set(self.marks)

    @property
    def rendered(self) -> set[str]:
        """Figures whose SVG holds at least one drawn mark."""
        return {name for name, count in self.marks.items() if count > 0}

    def describe(self) -> str:
        """Everything above in a few lines, for an assertion message."""
        return (f"marks per figure: {self.marks}\nconsole errors: {self.console_errors}\n"
                f"console warnings: {self.console_warnings}\npage errors: {self.page_errors}\n"
                f"blocked requests: {self.blocked_requests}\npage scroll width: {self.scroll_width} px")


def render_page(html: Path, *, timeout_s: float = 30.0, screenshot: Path | None = None,
                chromium: Path = CHROMIUM, viewport: dict[str, int] = VIEWPORT) -> PageRender:
    """Open `html` offline, wait until every figure has drawn marks or `timeout_s` passes, and report.

    A timeout is not an error: the figures that did not draw show 0 marks. With `screenshot`, a
    full-page PNG is written there after the wait. The page is laid out in `viewport` (width and
    height in CSS pixels); its scroll width says whether anything overflows sideways. Raises BrowserMissing, naming `make install`,
    when Chromium or Playwright is absent.
    """
    if not chromium.is_file():
        raise BrowserMissing(f"no Chromium at {chromium}: run `make install` (installs Debian's chromium package)")
    try:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError as missing:
        raise BrowserMissing(f"{missing}: run `make install` (installs the dev extra with Playwright)") from None

    console_errors: list[str] = []
    console_warnings: list[str] = []
    page_errors: list[str] = []
    blocked_requests: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        where = message.location
        text = f"{message.text} ({where['url']}:{where['lineNumber']})" if where.get("url") else message.text
        if message.type == "error":
            console_errors.append(text)
        elif message.type == "warning":
            console_warnings.append(text)

    def only_files(route: Route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked_requests.append(route.request.url)
            route.abort("blockedbyclient")

    with sync_playwright() as playwright:
        # Playwright launches with a fresh temporary profile, which it removes on close.
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=True, viewport=viewport)
            context.route("**/*", only_files)
            page = context.new_page()
            page.on("console", on_console)
            page.on("pageerror", lambda error: page_errors.append(f"{error.name}: {error.message}"))
            page.goto(html.resolve().as_uri())
            with suppress(PlaywrightTimeout):  # a figure that never drew is reported with 0 marks
                page.wait_for_function(ALL_DRAWN_JS, timeout=timeout_s * 1000)
            marks: dict[str, int] = page.evaluate(MARK_COUNTS_JS)
            texts: dict[str, list[str]] = page.evaluate(TEXTS_JS)
            scroll_width: int = page.evaluate("() => document.documentElement.scrollWidth")
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=screenshot, full_page=True)
        finally:
            browser.close()
    return PageRender(marks, texts, scroll_width, console_errors, console_warnings, page_errors, blocked_requests)


def table_after_clicks(html: Path, table_id: str, headings: list[str], *, chromium: Path = CHROMIUM,
                       screenshot: Path | None = None) -> list[list[str]]:
    """Open `html` offline, click the column headings of table `table_id` named in `headings`, in order, and
    return the table's body rows as cell texts afterwards (a screenshot of the table to `screenshot`)."""
    if not chromium.is_file():
        raise BrowserMissing(f"no Chromium at {chromium}: run `make install` (installs Debian's chromium package)")
    try:
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError as missing:
        raise BrowserMissing(f"{missing}: run `make install` (installs the dev extra with Playwright)") from None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=True, viewport=VIEWPORT)
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                          else route.abort("blockedbyclient"))
            page = context.new_page()
            page.goto(html.resolve().as_uri())
            table = page.locator(f"#{table_id}")
            for heading in headings:
                table.locator("th", has_text=heading).first.click()
            rows: list[list[str]] = table.evaluate(
                "t => Array.from(t.tBodies[0].rows, r => Array.from(r.cells, c => c.textContent))")
            if screenshot is not None:
                table.screenshot(path=str(screenshot))
        finally:
            browser.close()
    return rows
