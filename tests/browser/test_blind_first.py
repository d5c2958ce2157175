"""Blind-first rating and the people features' editing pages in a real browser, against
`liner up` (see conftest.py): a person turns blind-first on on their profile, opens an
album others reviewed and sees neither the score nor the reviews, rates it, and sees
both at once; elsewhere too — the chart, the feed, a profile and the album's room hide
the album's score and others' ratings until they rate it, and show them right after;
a list renamed, described and an album's note edited by its owner; the page of a
person's liked reviews, linked from their profile.
"""

import uuid

from conftest import api
from playwright.sync_api import expect

REVIEWS = "/api/users-reviews"


def catalog_album(person, index):
    """One of the catalogue's first albums (the shipped sample)."""
    res = api(person, "GET", f"/api/catalog/albums?limit={index + 1}")
    assert res.ok, res.text()
    return res.json()["items"][index]


def rate_three_stars_here(page):
    """Rates the album whose page is open with the form, and waits for the save."""
    page.locator("label[for='review-rating-3']").click()
    page.get_by_role("button", name="Post review").click()
    expect(page.locator(".form-status")).to_have_text("Saved.")


def post_review(person, token, album_id, rating, text=""):
    res = api(person, "POST", f"{REVIEWS}/reviews", {"albumId": album_id, "rating": rating, "reviewText": text}, token)
    assert res.status == 201, res.text()


def account_token(person):
    """A token of a new account made over the API alone, from the person's context."""
    name = f"fan_{uuid.uuid4().hex[:8]}"
    body = {"username": name, "password": "correct horse battery", "email": f"{name}@example.com"}
    res = api(person, "POST", f"{REVIEWS}/users/register", body)
    assert res.status == 201, res.text()
    res = api(person, "POST", f"{REVIEWS}/users/login", {"username": name, "password": body["password"]})
    assert res.ok, res.text()
    return res.json()["token"]


def test_a_blind_first_person_sees_the_score_only_after_rating(person):
    alice, bob = person("alice"), person("bob")
    album = catalog_album(alice, 7)
    alice.sign_up()
    post_review(alice, alice.token(), album["id"], 4.5, "Every chord lands.")

    bob.sign_up()
    bob.goto(f"/users/{bob.user_id()}")
    toggle = bob.page.locator("#blind-first")
    expect(toggle).to_be_enabled()
    expect(toggle).not_to_be_checked()
    toggle.check()
    expect(bob.page.locator(".blind-setting [role=status]")).to_have_text("Saved.")

    bob.goto(f"/albums/{album['id']}")
    expect(bob.page.locator("#blind-note")).to_have_text("Rate it first to see what others think.")
    expect(bob.page.locator("#reviews-hidden")).to_be_visible()
    expect(bob.page.locator("#album-score")).to_have_count(0)
    expect(bob.page.locator("#reviews .review")).to_have_count(0)
    bob.screenshot("blind-first-hidden")

    rate_three_stars_here(bob.page)
    expect(bob.page.locator("#score-weighted")).to_be_visible()
    expect(bob.page.locator("#blind-note")).to_have_count(0)
    expect(bob.page.locator("#reviews .review", has_text="Every chord lands.")).to_be_visible()
    expect(bob.page.locator("#reviews .review")).to_have_count(2)
    bob.screenshot("blind-first-revealed")


def test_blind_first_hides_the_chart_score_and_others_ratings_until_rated(person):
    alice, bob = person("alice"), person("bob")
    album = catalog_album(alice, 6)
    alice.sign_up()
    post_review(alice, alice.token(), album["id"], 5, "Side two is the one.")
    # Three 5-star ratings put it at the top of this week's chart, whatever else is rated.
    for _ in range(2):
        post_review(alice, account_token(alice), album["id"], 5)
    body = {"roomType": "album", "albumId": album["id"], "title": "Blind listening"}
    res = api(alice, "POST", "/api/forums/rooms", body, alice.token())
    assert res.status in (201, 409), res.text()
    room_id = res.json()["id"] if res.status == 201 else res.json()["error"]["existingId"]

    bob.sign_up()
    res = api(bob, "PUT", f"{REVIEWS}/users/me/settings", {"blindFirst": True}, bob.token())
    assert res.ok, res.text()
    res = api(bob, "PUT", f"{REVIEWS}/users/{alice.user_id()}/follow", None, bob.token())
    assert res.ok, res.text()

    page = bob.goto("/")
    row = page.locator(f".chart__row[data-album-id='{album['id']}']")
    expect(row.locator(".blind-prompt")).to_have_text("Rate it to see the score")
    expect(row.locator(".score-pill")).to_have_count(0)
    bob.screenshot("blind-first-chart")

    bob.goto(f"/users/{alice.user_id()}")
    mine = page.locator("#user-reviews .review")
    expect(mine.locator(".blind-prompt")).to_have_text(["Rate it first to read this review"])
    expect(mine.locator(".stars")).to_have_count(0)
    expect(mine).not_to_contain_text("Side two is the one.")

    bob.goto(f"/rooms/{room_id}")
    expect(page.locator("#rating-split")).to_have_text("Rate the album to see how this room rated it")

    bob.goto("/feed")
    review = page.locator("#feed .review")
    expect(review.locator(".blind-prompt")).to_have_text(["Rate it first to read this review"])
    expect(review.locator(".stars")).to_have_count(0)
    expect(review.locator(".like")).to_have_count(0)
    expect(review).not_to_contain_text("Side two is the one.")
    bob.screenshot("blind-first-feed")

    # Rated from the prompt; the pages that follow are reached without a reload, so
    # what the client kept of his reviews must be read again after the save.
    review.locator(".blind-prompt").click()
    rate_three_stars_here(page)
    page.locator("#site-nav a", has_text="Feed").click()
    expect(review.locator(".stars")).to_have_count(1)
    expect(review).to_contain_text("Side two is the one.")
    expect(review.locator(".blind-prompt")).to_have_count(0)
    page.locator(".brand").click()
    expect(row.locator(".score-pill")).to_be_visible()
    expect(row.locator(".blind-prompt")).to_have_count(0)
    bob.goto(f"/rooms/{room_id}")
    expect(page.locator("#rating-split")).to_contain_text("Loved it")


def test_without_blind_first_the_feed_shows_every_rating(person):
    cleo, dan = person("cleo"), person("dan")
    cleo.sign_up()
    post_review(cleo, cleo.token(), "mb:open-eyes", 4, "Nothing to hide.")
    dan.sign_up()
    res = api(dan, "PUT", f"{REVIEWS}/users/{cleo.user_id()}/follow", None, dan.token())
    assert res.ok, res.text()
    page = dan.goto("/feed")
    review = page.locator("#feed .review")
    expect(review).to_contain_text("Nothing to hide.")
    expect(review.locator(".stars")).to_have_count(1)
    expect(page.locator(".blind-prompt")).to_have_count(0)


def new_list_with_album(person, name, album_id, note):
    res = api(person, "POST", f"{REVIEWS}/lists", {"name": name}, person.token())
    assert res.status == 201, res.text()
    list_id = res.json()["id"]
    res = api(person, "POST", f"{REVIEWS}/lists/{list_id}/items", {"albumId": album_id, "note": note}, person.token())
    assert res.status == 201, res.text()
    return list_id


def test_rename_a_list_describe_it_and_edit_a_note(person):
    hana = person("hana")
    hana.sign_up()
    list_id = new_list_with_album(hana, "Sunday", "mb:sunday-album", "Slow start.")
    hana.goto(f"/lists/{list_id}")
    expect(hana.page.locator("#list-name")).to_have_text("Sunday")

    hana.page.get_by_label("Name", exact=True).fill("Sunday mornings")
    hana.page.get_by_label("Description", exact=True).fill("Coffee first.")
    hana.page.get_by_role("button", name="Save list").click()
    expect(hana.page.locator("#list-name")).to_have_text("Sunday mornings")
    expect(hana.page.locator(".list-description")).to_have_text("Coffee first.")

    hana.page.get_by_role("button", name="Edit note of mb:sunday-album").click()
    hana.page.get_by_label("Note for mb:sunday-album").fill("Best with the windows open.")
    hana.page.get_by_role("button", name="Save note").click()
    expect(hana.page.locator("#list-items .list-item__note")).to_have_text(["Best with the windows open."])
    hana.screenshot("list-edited")

    # As stored: a reload shows the same.
    hana.page.reload()
    expect(hana.page.locator("#list-name")).to_have_text("Sunday mornings")
    expect(hana.page.locator("#list-items .list-item__note")).to_have_text(["Best with the windows open."])


def test_the_liked_reviews_page_lists_a_liked_review(person):
    ivan, jo = person("ivan"), person("jo")
    ivan.sign_up()
    body = {"albumId": "mb:liked-album", "rating": 4, "reviewText": "The bass line carries it."}
    res = api(ivan, "POST", f"{REVIEWS}/reviews", body, ivan.token())
    assert res.status == 201, res.text()
    review_id = res.json()["id"]

    jo.sign_up()
    res = api(jo, "PUT", f"{REVIEWS}/reviews/{review_id}/like", None, jo.token())
    assert res.ok, res.text()
    jo.goto(f"/users/{jo.user_id()}")
    jo.page.locator("#profile-likes").click()
    expect(jo.page).to_have_url(f"{jo.base_url}/users/{jo.user_id()}/likes")
    item = jo.page.locator(f"#liked-reviews .review[data-review-id='{review_id}']")
    expect(item).to_contain_text("The bass line carries it.")
    expect(item).to_contain_text(ivan.username)
    expect(item.locator(".like")).to_have_attribute("aria-pressed", "true")
    jo.screenshot("liked-reviews")
