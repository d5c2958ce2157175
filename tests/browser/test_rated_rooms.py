"""Rating-aware album rooms in a real browser, against `liner up` (see conftest.py): a
member who rated the album has a "★ 4.5" badge on their messages, one who did not has
none, and the room's header shows how its posters rated the album.
"""

import uuid

from conftest import api
from playwright.sync_api import expect


def send_chat(page, text):
    page.locator("#chat-input").fill(text)
    page.locator("#chat-input").press("Enter")


def test_a_raters_message_has_a_badge_and_the_header_shows_the_split(person):
    alice, bob = person("alice"), person("bob")
    alice.sign_up()
    bob.sign_up()
    album = f"alb-{uuid.uuid4().hex[:10]}"
    res = api(alice, "POST", "/api/users-reviews/reviews", {"albumId": album, "rating": 4.5, "reviewText": "great"}, alice.token())
    assert res.status == 201, res.text()
    res = api(alice, "POST", "/api/forums/rooms", {"roomType": "album", "albumId": album}, alice.token())
    assert res.status == 201, res.text()
    room_id = res.json()["id"]
    for p in (alice, bob):
        p.goto(f"/rooms/{room_id}")
        expect(p.page.locator("#room-state")).to_have_text("Live")

    send_chat(alice.page, "side two is the best")
    expect(bob.page.locator("#messages .msg__text")).to_have_text(["side two is the best"])
    send_chat(bob.page, "not heard it yet")
    expect(bob.page.locator("#messages .msg__text")).to_have_text(["side two is the best", "not heard it yet"])
    expect(bob.page.locator("#messages .msg__rating")).to_have_text(["★ 4.5"])  # alice's only
    expect(bob.page.locator("#messages li").nth(1).locator(".msg__rating")).to_have_count(0)

    bob.page.reload()
    expect(bob.page.locator("#messages .msg__rating")).to_have_text(["★ 4.5"])
    expect(bob.page.locator("#rating-split")).to_have_text("Loved it 1 · Mixed 0 · Disliked 0 · Unrated 1")
    bob.screenshot("rated-room")
