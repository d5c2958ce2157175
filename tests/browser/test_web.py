"""The web client in a real browser, against `liner up` (see conftest.py).

Two people in two browser contexts review an album and chat in its room, through a
network drop and a room closing; bad input shows the server's message by its field; a
bad token leads to the log-in prompt; every page is screenshotted at desktop and phone
widths; and no page ever requests another origin or breaks the CSP (checked for every
page of every test by the `person` fixture).
"""

import json
import re
import time

from conftest import DESKTOP, PHONE, api
from playwright.sync_api import expect


def catalogue_albums(person, count):
    res = api(person, "GET", f"/api/catalog/albums?limit={count}")
    assert res.ok, f"catalogue answered {res.status}: {res.text()}"
    items = res.json()["items"]
    assert len(items) == count, "the sample catalogue is loaded"
    return items


def album_stats(person, album_id):
    return api(person, "GET", f"/api/users-reviews/reviews/album/{album_id}?limit=1").json()


def chat_texts(page):
    return page.locator("#messages .msg__text").all_text_contents()


def send_chat(page, text):
    page.locator("#chat-input").fill(text)
    page.locator("#chat-input").press("Enter")


def assert_exactly_once_in_order(page, expected):
    expect(page.locator("#messages .msg__text")).to_have_text(expected)
    seqs = [int(s) for s in page.locator("#messages .msg").evaluate_all("els => els.map(e => e.dataset.seq)")]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"seqs are contiguous, no doubles: {seqs}"


def test_two_people_review_an_album_and_chat_in_its_room(person):
    alice, bob = person("alice"), person("bob")
    album = catalogue_albums(alice, 3)[2]

    # Alice signs up, finds the album by searching for its title, and reviews it.
    alice.sign_up()
    alice.page.get_by_label("Search albums", exact=False).first.fill(album["title"])
    alice.page.keyboard.press("Enter")
    expect(alice.page).to_have_url(re.compile(r"/search\?q="))
    alice.page.locator(".album-card__title", has_text=album["title"]).first.click()
    expect(alice.page.locator("h1")).to_have_text(album["title"])
    alice.page.locator("label[for='review-rating-4_5']").click()
    alice.page.get_by_label("Review", exact=True).fill("Side two is the one. 🎷")
    alice.page.get_by_role("button", name="Post review").click()
    expect(alice.page.locator(".form-status")).to_have_text("Saved.")
    expect(alice.page.locator("#score-average")).to_have_text("4.50 from 1 rating")

    # Bob sees her review and the album's new score.
    bob.sign_up()
    bob.goto(f"/albums/{album['id']}")
    review = bob.page.locator("#reviews .review").first
    expect(review).to_contain_text(alice.username)
    expect(review).to_contain_text("Side two is the one. 🎷")
    expect(review.locator(".stars .visually-hidden")).to_have_text("4.5 out of 5")
    stats = album_stats(bob, album["id"])
    expect(bob.page.locator("#score-weighted")).to_have_text(f"{stats['score']['weighted']:.2f}")
    low, high = stats["score"]["low"], stats["score"]["high"]
    expect(bob.page.locator("#score-interval")).to_have_text(f"{low:.2f} – {high:.2f}")

    # Bob rates it too; Alice's page shows the new average after a reload.
    bob.page.locator("label[for='review-rating-3']").click()
    bob.page.get_by_role("button", name="Post review").click()
    expect(bob.page.locator("#score-average")).to_have_text("3.75 from 2 ratings")
    alice.page.reload()
    expect(alice.page.locator("#score-average")).to_have_text("3.75 from 2 ratings")
    alice.screenshot("album-two-reviews")

    # Alice opens the album's room; Bob joins it from the album page.
    alice.page.locator("#room-open").click()
    expect(alice.page).to_have_url(re.compile(r"/rooms/"))
    expect(alice.page.locator("#room-state")).to_have_text("Live")
    bob.page.reload()
    bob.page.locator("#room-link").click()
    expect(bob.page.locator("#room-state")).to_have_text("Live")
    expect(alice.page.locator("#people")).to_contain_text(bob.username)
    expect(alice.page.locator("#room-online")).to_have_text("2 online")

    # Both ways.
    send_chat(alice.page, "hi bob, side two?")
    expect(bob.page.locator("#messages")).to_contain_text("hi bob, side two?")
    send_chat(bob.page, "yes — Flamenco Sketches")
    expect(alice.page.locator("#messages")).to_contain_text("yes — Flamenco Sketches")

    # Bob drops off the network; Alice goes on talking, Bob writes while offline.
    bob.context.set_offline(True)
    expect(bob.page.locator("#room-state")).to_have_attribute("data-state", "offline")
    for text in ["one", "two", "three"]:
        send_chat(alice.page, f"while you were away: {text}")
    expect(alice.page.locator("#pending .msg")).to_have_count(0)
    send_chat(bob.page, "typed on the train")
    expect(bob.page.locator("#pending .msg--pending")).to_have_text(re.compile("typed on the train"))
    bob.screenshot("room-offline")

    # Back online: everything once, in order, and his pending message is delivered once.
    bob.context.set_offline(False)
    expect(bob.page.locator("#room-state")).to_have_text("Live")
    expected = [
        "hi bob, side two?",
        "yes — Flamenco Sketches",
        "while you were away: one",
        "while you were away: two",
        "while you were away: three",
        "typed on the train",
    ]
    assert_exactly_once_in_order(bob.page, expected)
    expect(bob.page.locator("#pending .msg")).to_have_count(0)
    assert_exactly_once_in_order(alice.page, expected)
    alice.screenshot("room-chat")

    # Alice, the creator, closes the room; Bob sees it closed and can still read it.
    expect(bob.page.locator("#room-close")).to_have_count(0)
    alice.page.locator("#room-close").click()
    alice.page.locator("#room-close").click()
    expect(alice.page.locator("#room-state")).to_have_text("Room closed")
    expect(bob.page.locator("#room-state")).to_have_text("Room closed")
    expect(bob.page.locator("#room-closed")).to_be_visible()
    expect(bob.page.locator("#chat-input")).to_have_count(0)
    expect(bob.page.locator("#messages .msg")).to_have_count(len(expected))
    bob.screenshot("room-closed")


def test_bad_input_shows_the_servers_message_next_to_the_field(person):
    carol = person("carol")
    album = catalogue_albums(carol, 2)[1]
    carol.sign_up()
    carol.goto(f"/albums/{album['id']}")
    post = carol.page.get_by_role("button", name="Post review")

    # No rating: the server's 422 names `rating`; it shows under the rating control.
    post.click()
    rating_error = carol.page.locator("#review-rating-error")
    expect(rating_error).to_be_visible()
    expect(rating_error).to_contain_text("rating")
    expect(carol.page.locator("#review-rating")).to_have_attribute("aria-invalid", "true")
    expect(carol.page.locator("#review-text-error")).to_be_hidden()

    # 10,001 characters: not blocked in the page; the server's message shows by the text.
    carol.page.locator("label[for='review-rating-2_5']").click()
    carol.page.get_by_label("Review", exact=True).fill("x" * 10_001)
    expect(carol.page.locator(".counter")).to_have_text("10,001 / 10,000")
    post.click()
    text_error = carol.page.locator("#review-text-error")
    expect(text_error).to_be_visible()
    expect(text_error).to_contain_text("reviewText")
    expect(text_error).to_contain_text("10000")
    expect(rating_error).to_be_hidden()
    carol.screenshot("review-errors")
    assert album_stats(carol, album["id"])["total"] == 0, "nothing was stored"

    # Sign-up errors land by their fields too.
    dave = person("dave")
    dave.goto("/signup")
    dave.page.get_by_label("Username").fill("x")
    dave.page.get_by_label("Email").fill("dave@example.com")
    dave.page.get_by_label("Password").fill("long enough pass")
    dave.page.get_by_role("button", name="Create account").click()
    expect(dave.page.locator("#signup-username-error")).to_contain_text("username")


def test_an_expired_or_garbage_token_leads_to_the_login_prompt(person, base_url):
    erin = person("erin")
    erin.goto("/")
    # Unreadable token: dropped on load, and the person is told.
    erin.page.evaluate(
        "localStorage.setItem('liner.session', JSON.stringify({token: 'garbage', user: {id: 'u1', username: 'erin'}}))"
    )
    erin.page.reload()
    expect(erin.page.locator("#notice")).to_contain_text("Your session expired")
    expect(erin.page.locator("#session-expired-login")).to_be_visible()
    expect(erin.page.get_by_role("link", name="Log in", exact=True)).to_be_visible()

    # A well-formed token the server refuses (forged signature, future expiry): the
    # first write gets 401, and the page says so instead of breaking.
    erin.sign_up()
    real = erin.token()
    header, claims, _ = real.split(".")
    forged = f"{header}.{claims}.{'A' * 86}"
    erin.page.evaluate(
        "t => { const s = JSON.parse(localStorage.getItem('liner.session')); s.token = t; localStorage.setItem('liner.session', JSON.stringify(s)); }",
        forged,
    )
    album = catalogue_albums(erin, 1)[0]
    erin.goto(f"/albums/{album['id']}")
    erin.page.locator("label[for='review-rating-4']").click()
    erin.page.get_by_role("button", name="Post review").click()
    expect(erin.page.locator("#notice")).to_contain_text("Your session expired")
    erin.screenshot("session-expired")
    erin.page.locator("#session-expired-login").click()
    expect(erin.page).to_have_url(re.compile(r"/login\?next="))
    erin.page.get_by_label("Username or email").fill(erin.username)
    erin.page.get_by_label("Password").fill(erin.password)
    erin.page.get_by_role("button", name="Log in").click()
    expect(erin.page).to_have_url(re.compile(f"/albums/{re.escape(album['id'])}$"))
    expect(erin.page.locator("#notice")).to_be_empty()


def test_security_headers_and_immutable_assets(person, base_url):
    frank = person("frank")
    responses = []
    frank.page.on("response", lambda r: responses.append(r))
    page_res = frank.page.goto(base_url + "/albums/anything")
    headers = page_res.headers
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cache-control"] == "no-cache"
    expect(frank.page.locator("h1")).to_be_visible()
    assets = [r for r in responses if "/assets/" in r.url]
    assert any(r.url.endswith(".js") for r in assets) and any(r.url.endswith(".css") for r in assets)
    for r in assets:
        assert r.status == 200, r.url
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable", r.url
        assert re.search(r"\.[0-9a-f]{12}\.(js|css|svg)$", r.url), f"content-hashed name: {r.url}"
    # An unknown API path stays a JSON error, not the page.
    res = api(frank, "GET", "/api/nowhere")
    assert res.status == 404
    assert res.json()["error"]["code"] == "not_found"


def test_every_page_at_desktop_and_phone(person):
    # Data for the pages: a user with a review, an album room with a message.
    gina = person("gina")
    gina.sign_up()
    album = catalogue_albums(gina, 1)[0]
    token = gina.token()
    res = api(gina, "POST", "/api/users-reviews/reviews", {"albumId": album["id"], "rating": 4, "reviewText": "Warm and wide."}, token)
    assert res.status in (201, 409), res.text()
    rooms = api(gina, "GET", f"/api/forums/rooms?roomType=album&albumId={album['id']}").json()
    if rooms:
        room_id = rooms[0]["id"]
    else:
        res = api(gina, "POST", "/api/forums/rooms", {"roomType": "album", "albumId": album["id"]}, token)
        assert res.status == 201, res.text()
        room_id = res.json()["id"]
    gina.goto(f"/rooms/{room_id}")
    expect(gina.page.locator("#room-state")).to_have_text("Live")
    send_chat(gina.page, "Anyone else hearing the bass line at 2:14?")
    expect(gina.page.locator("#messages")).to_contain_text("bass line")
    genre = album["genres"][0] if album["genres"] else None
    pages = {
        "home": ("/", "h1"),
        "search": (f"/search?q={album['title'].split()[0]}", ".album-card"),
        "genres": ("/genres", ".genre-list"),
        "album": (f"/albums/{album['id']}", "#score-weighted"),
        "user": (f"/users/{gina.user_id()}", "#user-reviews .review"),
        "room": (f"/rooms/{room_id}", "#messages .msg"),
        "add-album": ("/albums/new", "#album-title"),
        "login": ("/login", "#login-username"),
        "signup": ("/signup", "#signup-username"),
        "not-found": ("/no/such/page", "h1"),
    }
    if genre:
        pages["genre"] = (f"/genres/{genre}", ".album-card")
    session = gina.page.evaluate("localStorage.getItem('liner.session')")
    for viewport, label in [(DESKTOP, "desktop"), (PHONE, "phone")]:
        viewer = person(f"viewer_{label}", viewport=viewport)
        viewer.goto("/")
        viewer.page.evaluate("s => localStorage.setItem('liner.session', s)", session)
        for name, (path, ready) in pages.items():
            if name in ("login", "signup"):
                viewer.page.evaluate("localStorage.removeItem('liner.session')")
            viewer.goto(path)
            expect(viewer.page.locator(ready).first).to_be_visible()
            if name != "room":
                viewer.page.wait_for_load_state("networkidle")
            overflow = viewer.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} scrolls sideways at {viewport['width']} px"
            viewer.screenshot(name)
