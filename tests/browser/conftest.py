"""Fixtures for the browser tests: one Chromium (Debian's, launched by Playwright), a
fresh context per person, and checks that run on every page of every test.

The server is started by scripts/browser-test, which passes its address in
LINER_BROWSER_URL. Every page a person opens is watched: a request to another origin,
a Content-Security-Policy violation or an uncaught script error fails the test.
"""

import os
import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

BASE_URL = os.environ.get("LINER_BROWSER_URL", "").rstrip("/")
ARTIFACTS = Path(os.environ.get("LINER_BROWSER_ARTIFACTS", "target/browser-artifacts"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def base_url() -> str:
    if not BASE_URL:
        pytest.fail("LINER_BROWSER_URL is not set: run scripts/browser-test")
    return BASE_URL


@pytest.fixture(scope="session")
def browser() -> Browser:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-default-apps",
                "--disable-extensions",
            ],
        )
        yield b
        b.close()


class Person:
    """One person in their own browser context (own storage, own network state)."""

    def __init__(self, context: BrowserContext, base_url: str, name: str):
        self.context = context
        self.base_url = base_url
        self.name = name
        self.username = f"{name}_{uuid.uuid4().hex[:8]}"
        self.password = "correct horse battery"
        self.page: Page = context.new_page()
        self.foreign_requests: list[str] = []
        self.problems: list[str] = []
        origin = urlsplit(base_url)
        self.page.on("request", lambda r: self._check_origin(r.url, origin))
        self.page.on("console", self._check_console)
        self.page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))

    def _check_origin(self, url: str, origin) -> None:
        u = urlsplit(url)
        if u.scheme in ("data", "blob", "about"):
            return
        if (u.hostname, u.port) != (origin.hostname, origin.port):
            self.foreign_requests.append(url)

    def _check_console(self, msg) -> None:
        if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text:
            self.problems.append(f"CSP: {msg.text}")

    def goto(self, path: str) -> Page:
        self.page.goto(self.base_url + path)
        return self.page

    def sign_up(self) -> None:
        page = self.goto("/signup")
        page.get_by_label("Username").fill(self.username)
        page.get_by_label("Email").fill(f"{self.username}@example.com")
        page.get_by_label("Password").fill(self.password)
        page.get_by_role("button", name="Create account").click()
        expect(page.locator(".nav-user")).to_have_text(self.username)

    def token(self) -> str:
        return self.page.evaluate("JSON.parse(localStorage.getItem('liner.session')).token")

    def user_id(self) -> str:
        return self.page.evaluate("JSON.parse(localStorage.getItem('liner.session')).user.id")

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        width = self.page.viewport_size["width"]
        self.page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)


@pytest.fixture
def person(browser: Browser, base_url: str):
    """A factory: person("alice") → a Person with a fresh context; checked at teardown."""
    people: list[Person] = []

    def make(name: str, viewport=DESKTOP) -> Person:
        ctx = browser.new_context(viewport=viewport, base_url=base_url)
        p = Person(ctx, base_url, name)
        people.append(p)
        return p

    yield make
    for p in people:
        p.context.close()
    for p in people:
        assert p.foreign_requests == [], f"{p.name}'s pages requested other origins: {p.foreign_requests}"
        assert p.problems == [], f"{p.name}'s pages had problems: {p.problems}"


def api(person: Person, method: str, path: str, body=None, token: str | None = None):
    """A direct API call from the person's context (same cookies and origin rules)."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    res = person.context.request.fetch(person.base_url + path, method=method, data=body, headers=headers)
    return res


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
