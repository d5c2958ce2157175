"""Room tools in a real browser, against `liner up` (see conftest.py): two people in
two browser contexts; an edit shows "(edited)" with the new text for the other one, a
message the creator deletes turns into "message deleted" for the other one live (and
after a reload), "… is typing" shows for the other one, slow mode holds a member back,
and a member the creator mutes is listed for her until she unmutes him, after which he
talks again. Every room event arrives over the live WebSocket, never by reloading.
"""

import uuid

from conftest import api
from playwright.sync_api import expect

# One account per name for the whole file: `liner up` allows 10 sign-ups per address per
# hour, and test_web.py needs its own.
ACCOUNTS: dict[str, str] = {}


def enter(p):
    """Signs the person up the first time their name is used, logs them in after that."""
    if p.name not in ACCOUNTS:
        p.sign_up()
        ACCOUNTS[p.name] = p.username
        return
    p.username = ACCOUNTS[p.name]
    page = p.goto("/login")
    page.get_by_label("Username").fill(p.username)
    page.get_by_label("Password").fill(p.password)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.locator(".nav-user")).to_have_text(p.username)


def open_room(alice, bob):
    """Alice creates a genre room of her own; both are in it, live."""
    enter(alice)
    enter(bob)
    genre = f"g-{uuid.uuid4().hex[:10]}"
    res = api(alice, "POST", "/api/forums/rooms", {"roomType": "genre", "genreId": genre, "title": "Tools"}, alice.token())
    assert res.status == 201, res.text()
    room_id = res.json()["id"]
    for p in (alice, bob):
        p.goto(f"/rooms/{room_id}")
        expect(p.page.locator("#room-state")).to_have_text("Live")
    return room_id


def send_chat(page, text):
    page.locator("#chat-input").fill(text)
    page.locator("#chat-input").press("Enter")


def test_an_edit_shows_for_the_other_member(person):
    alice, bob = person("alice"), person("bob")
    open_room(alice, bob)
    send_chat(alice.page, "Kind of Bleu is perfect")
    expect(bob.page.locator("#messages .msg__text")).to_have_text(["Kind of Bleu is perfect"])
    expect(bob.page.locator("#messages .msg__edit")).to_have_count(0)  # not his message

    mine = alice.page.locator("#messages .msg--mine").first
    mine.locator(".msg__edit").click()
    alice.page.locator(".msg__edit-input").fill("Kind of Blue is perfect")
    alice.page.locator(".msg__edit-input").press("Enter")

    for p in (bob, alice):
        expect(p.page.locator("#messages .msg__text")).to_have_text(["Kind of Blue is perfect"])
        expect(p.page.locator("#messages .msg__edited")).to_have_text(["(edited)"])
    bob.screenshot("room-edited")
    bob.page.reload()
    expect(bob.page.locator("#messages .msg__text")).to_have_text(["Kind of Blue is perfect"])
    expect(bob.page.locator("#messages .msg__edited")).to_have_count(1)


def test_the_creator_deletes_a_message_and_the_other_member_sees_the_tombstone(person):
    alice, bob = person("alice"), person("bob")
    open_room(alice, bob)
    expect(alice.page.locator("#mod-bar")).to_be_visible()  # the creator moderates
    expect(bob.page.locator("#mod-bar")).to_have_count(0)
    send_chat(bob.page, "cheap pills here")
    send_chat(bob.page, "anyway, side two")
    expect(alice.page.locator("#messages .msg__text")).to_have_text(["cheap pills here", "anyway, side two"])

    # Bob reports nothing of his own; Alice deletes his first message from her page.
    expect(bob.page.locator("#messages .msg__report")).to_have_count(0)
    alice.page.locator("#messages .msg").first.locator(".msg__delete").click()
    for p in (bob, alice):
        expect(p.page.locator("#messages .msg__text")).to_have_text(["message deleted", "anyway, side two"])
        expect(p.page.locator("#messages .msg--deleted .msg__actions")).to_have_count(0)
    bob.screenshot("room-tombstone")
    bob.page.reload()
    expect(bob.page.locator("#messages .msg__text--deleted")).to_have_text(["message deleted"])

    # Bob reports one of Alice's messages; she finds it among the open reports.
    send_chat(alice.page, "only mono pressings count")
    bob_msg = bob.page.locator("#messages .msg", has_text="only mono pressings count")
    bob_msg.locator(".msg__report").click()
    bob.page.locator(".msg__report-reason").fill("gatekeeping")
    bob.page.locator(".msg__report-form button[type=submit]").click()
    expect(bob.page.locator(".msg__report-form")).to_contain_text("Reported")
    alice.page.locator("#reports-load").click()
    expect(alice.page.locator("#reports li")).to_contain_text(["gatekeeping"])


def test_typing_shows_for_the_other_member_and_slow_mode_holds_him(person):
    alice, bob = person("alice"), person("bob")
    open_room(alice, bob)
    bob.page.locator("#chat-input").press_sequentially("what a so", delay=30)
    expect(alice.page.locator("#typing")).to_have_text(f"{bob.username} is typing…")
    expect(bob.page.locator("#typing")).to_have_text("")  # never one's own
    bob.page.locator("#chat-input").press_sequentially("lo", delay=30)
    bob.page.locator("#chat-input").press("Enter")
    expect(alice.page.locator("#messages .msg__text")).to_have_text(["what a solo"])
    expect(alice.page.locator("#typing")).to_have_text("")  # his message ends it

    expect(alice.page.locator("#mod-bar")).to_be_visible()
    alice.page.locator("#slow-mode").select_option("30")
    expect(bob.page.locator("#slow-mode-badge")).to_have_text("Slow mode 30 s")
    expect(bob.page.locator("#messages .msg--notice")).to_contain_text(["Slow mode: one message every 30 s"])
    # His last message was seconds ago: the next one is held back, and says why.
    send_chat(bob.page, "too soon")
    expect(bob.page.locator("#pending .msg--failed")).to_contain_text("slow mode")
    send_chat(alice.page, "moderators are not slowed")
    expect(bob.page.locator("#messages .msg__text")).to_have_text(["what a solo", "moderators are not slowed"])


def test_the_creator_mutes_a_member_sees_him_listed_and_unmutes_him(person):
    alice, bob = person("alice"), person("bob")
    open_room(alice, bob)
    expect(alice.page.locator("#mutes")).to_have_text("Nobody is muted.")
    send_chat(bob.page, "first!!!")
    alice.page.locator("#messages .msg", has_text="first!!!").locator(".msg__mute").click()
    expect(bob.page.locator("#messages .msg--notice")).to_contain_text(["You were muted by"])
    muted = alice.page.locator("#mutes li")
    expect(muted).to_have_count(1)
    expect(muted).to_contain_text(bob.username)
    expect(muted).to_contain_text("until")
    send_chat(bob.page, "am I muted?")
    expect(bob.page.locator("#pending .msg--failed")).to_contain_text("muted")
    alice.screenshot("room-mutes")

    alice.page.get_by_role("button", name=f"Unmute {bob.username}").click()
    expect(alice.page.locator("#mutes")).to_have_text("Nobody is muted.")
    expect(bob.page.locator("#messages .msg--notice")).to_contain_text(["You can talk again"])
    send_chat(bob.page, "thanks, sorry")
    expect(alice.page.locator("#messages .msg__text")).to_have_text(["first!!!", "thanks, sorry"])


def test_a_busy_room_slows_itself_down_and_back(person):
    """Adaptive slow mode, with the thresholds scripts/browser-test gives `liner up`
    (10 rows within 3 s switch a 20 s slow mode on; it may switch off after 2 s once the
    last 3 s held fewer than 5 rows): both members see the notice and the badge, the next
    line is held back and says why, and the room switches back by itself."""
    alice, bob = person("alice"), person("bob")
    open_room(alice, bob)
    lines = [f"release day {i}" for i in range(10)]
    for text in lines:
        send_chat(bob.page, text)
    for p in (alice, bob):
        expect(p.page.locator("#messages .msg__text")).to_have_text(lines)
        expect(p.page.locator("#messages .msg--notice")).to_contain_text(["The room is busy: slow mode switched on by itself, one message every 20 s"])
        expect(p.page.locator("#slow-mode-badge")).to_have_text("Slow mode 20 s (busy room)")
    bob.screenshot("room-busy")
    send_chat(bob.page, "one more")
    expect(bob.page.locator("#pending .msg--failed")).to_contain_text("slow mode")
    for p in (alice, bob):
        expect(p.page.locator("#messages .msg--notice")).to_contain_text(["The room is busy", "The room has calmed down: slow mode is off"])
        expect(p.page.locator("#slow-mode-badge")).to_be_hidden()
    send_chat(bob.page, "phew")
    expect(alice.page.locator("#messages .msg__text").last).to_have_text("phew")
