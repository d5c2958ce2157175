""""Discuss this review" in a real browser, against `liner up` (see conftest.py): from an
album page a person opens a review's thread in the album's room and lands in the room
replying in it; the other member sees the quoted review as a card and the reply linked
to it, live, replies from the card, and a line sent after leaving the thread is a plain
room line.
"""

from conftest import api
from playwright.sync_api import expect

REVIEWS = "/api/users-reviews"


def send_chat(page, text):
    page.locator("#chat-input").fill(text)
    page.locator("#chat-input").press("Enter")


def test_a_review_is_discussed_in_a_thread_of_the_album_room(person):
    ann, bob = person("ann"), person("bob")
    res = api(ann, "GET", "/api/catalog/albums?limit=8")
    assert res.ok, res.text()
    album = res.json()["items"][5]
    ann.sign_up()
    body = {"albumId": album["id"], "rating": 4.5, "reviewText": "Side two is where it lives."}
    res = api(ann, "POST", f"{REVIEWS}/reviews", body, ann.token())
    assert res.status == 201, res.text()

    bob.sign_up()
    bob.goto(f"/albums/{album['id']}")
    review = bob.page.locator("#reviews .review", has_text="Side two is where it lives.")
    review.get_by_role("button", name="Discuss in the room").click()
    expect(bob.page.locator("#room-state")).to_have_text("Live")
    assert "thread=" in bob.page.url
    card = bob.page.locator("#messages .msg--thread")
    expect(card.locator("blockquote")).to_have_text("Side two is where it lives.")
    expect(card.locator("figcaption")).to_contain_text(f"{ann.username}’s review")
    expect(card.locator("figcaption .tag")).to_have_text("★ 4.5")
    expect(bob.page.locator("#reply-bar")).to_contain_text(f"Replying in the thread on {ann.username}’s review")

    room_path = "/" + bob.page.url.split("?")[0].split("/", 3)[3]
    ann.goto(room_path)
    expect(ann.page.locator("#room-state")).to_have_text("Live")
    send_chat(bob.page, "side one though")
    reply = ann.page.locator("#messages .msg", has_text="side one though")
    expect(reply.locator(".msg__thread")).to_have_text(f"↳ in the thread on {ann.username}’s review")

    ann.page.locator("#messages .msg--thread .msg__reply").click()
    expect(ann.page.locator("#reply-bar")).to_be_visible()
    send_chat(ann.page, "thanks for reading it")
    answer = bob.page.locator("#messages .msg", has_text="thanks for reading it")
    expect(answer.locator(".msg__thread")).to_have_text(f"↳ in the thread on {ann.username}’s review")
    bob.screenshot("review-thread")

    bob.page.locator("#reply-bar button").click()
    expect(bob.page.locator("#reply-bar")).to_be_hidden()
    send_chat(bob.page, "anyone for the reissue?")
    plain = ann.page.locator("#messages .msg", has_text="anyone for the reissue?")
    expect(plain).to_be_visible()
    expect(plain.locator(".msg__thread")).to_have_count(0)

    # Discussing the same review again lands in the same thread.
    bob.goto(f"/albums/{album['id']}")
    bob.page.locator("#reviews .review", has_text="Side two is where it lives.").get_by_role("button", name="Discuss in the room").click()
    expect(bob.page.locator("#room-state")).to_have_text("Live")
    expect(bob.page.locator("#messages .msg--thread")).to_have_count(1)
