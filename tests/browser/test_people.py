"""Likes, spoilers, follows, the feed and lists in a real browser, against `liner up`
(see conftest.py): like a review and see its count (also after a reload, where the
shared album page says nothing about who liked what), a spoiler hidden until clicked,
follow someone and find their review in the feed, and a list made, filled with two
albums, reordered and read by someone logged out.
"""

import re

from conftest import PHONE, api
from playwright.sync_api import expect

REVIEWS = "/api/users-reviews"


def albums(person, count):
    res = api(person, "GET", f"/api/catalog/albums?limit={count}")
    assert res.ok, f"catalogue answered {res.status}: {res.text()}"
    items = res.json()["items"]
    assert len(items) == count, "the sample catalogue is loaded"
    return items


def post_review(person, album_id, text, spoiler=False):
    body = {"albumId": album_id, "rating": 4, "reviewText": text, "spoiler": spoiler}
    res = api(person, "POST", f"{REVIEWS}/reviews", body, person.token())
    assert res.status == 201, res.text()
    return res.json()


def test_like_a_review_and_see_the_count(person):
    alice, bob = person("alice"), person("bob")
    album = albums(alice, 5)[3]
    alice.sign_up()
    review = post_review(alice, album["id"], "The horns on track three.")

    bob.sign_up()
    bob.goto(f"/albums/{album['id']}")
    like = bob.page.locator(f"#reviews .review[data-review-id='{review['id']}'] .like")
    expect(like).to_have_attribute("aria-pressed", "false")
    expect(like.locator(".like__count")).to_have_text("0")
    like.click()
    expect(like).to_have_attribute("aria-pressed", "true")
    expect(like.locator(".like__count")).to_have_text("1")

    # After a reload: the count from the (cached, shared) album page, the pressed state
    # from the reader's own likes.
    bob.page.reload()
    expect(like.locator(".like__count")).to_have_text("1")
    expect(like).to_have_attribute("aria-pressed", "true")
    bob.screenshot("review-liked")
    like.click()
    expect(like).to_have_attribute("aria-pressed", "false")
    expect(like.locator(".like__count")).to_have_text("0")


def test_a_spoiler_is_hidden_until_clicked(person):
    carol, dave = person("carol"), person("dave")
    album = albums(carol, 6)[4]
    carol.sign_up()
    carol.goto(f"/albums/{album['id']}")
    carol.page.locator("label[for='review-rating-3_5']").click()
    carol.page.get_by_label("Review", exact=True).fill("The last song is a hidden reprise of the first.")
    carol.page.get_by_label("Contains spoilers").check()
    carol.page.get_by_role("button", name="Post review").click()
    expect(carol.page.locator(".form-status")).to_have_text("Saved.")

    dave.goto(f"/albums/{album['id']}")
    review = dave.page.locator("#reviews .review", has_text=carol.username)
    text = review.locator(".review__text")
    expect(text).to_be_hidden()
    reveal = review.get_by_role("button", name=re.compile("Contains spoilers"))
    expect(reveal).to_have_attribute("aria-expanded", "false")
    dave.screenshot("spoiler-hidden")
    reveal.click()
    expect(text).to_be_visible()
    expect(text).to_have_text("The last song is a hidden reprise of the first.")


def test_follow_a_user_and_see_their_review_in_the_feed(person):
    erin, frank = person("erin"), person("frank")
    album = albums(erin, 7)[5]
    erin.sign_up()
    erin_id = erin.user_id()

    frank.sign_up()
    frank.goto("/feed")
    expect(frank.page.locator("#feed-heading")).to_have_text("Your feed")
    expect(frank.page.get_by_text("Nothing yet")).to_be_visible()
    frank.goto(f"/users/{erin_id}")
    follow = frank.page.locator("#follow")
    expect(follow).to_have_text("Follow")
    expect(frank.page.locator("#profile-followers")).to_have_text("0")
    follow.click()
    expect(follow).to_have_text("Following")
    expect(follow).to_have_attribute("aria-pressed", "true")
    expect(frank.page.locator("#profile-followers")).to_have_text("1")

    post_review(erin, album["id"], "Late-night record, best on headphones.")
    frank.page.get_by_role("link", name="Feed", exact=True).click()
    item = frank.page.locator("#feed .review").first
    expect(item).to_contain_text("Late-night record, best on headphones.")
    expect(item).to_contain_text(erin.username)
    expect(item).to_contain_text(album["title"])
    frank.screenshot("feed")

    # The follow holds across a reload of her profile.
    frank.goto(f"/users/{erin_id}")
    expect(frank.page.locator("#follow")).to_have_text("Following")
    expect(frank.page.locator("#profile-followers")).to_have_text("1")


def test_create_a_list_add_two_albums_reorder_and_view_it_publicly(person):
    gina = person("gina")
    first, second = albums(gina, 9)[7:9]
    gina.sign_up()
    gina.goto(f"/users/{gina.user_id()}")
    gina.page.get_by_label("New list").fill("Desert island")
    gina.page.get_by_role("button", name="Create list").click()
    expect(gina.page).to_have_url(re.compile(r"/lists/"))
    expect(gina.page.locator("#list-name")).to_have_text("Desert island")
    list_url = gina.page.url

    for album, note in [(first, "Where it started."), (second, "The one I keep.")]:
        gina.goto(f"/albums/{album['id']}")
        gina.page.get_by_label("List", exact=True).select_option(label="Desert island")
        gina.page.get_by_label("Note").fill(note)
        gina.page.get_by_role("button", name="Add to list").click()
        expect(gina.page.locator("#add-to-list .form-status")).to_contain_text("Added to Desert island")

    gina.page.goto(list_url)
    titles = gina.page.locator("#list-items .list-item__title")
    expect(titles).to_have_text([first["title"], second["title"]])
    gina.page.get_by_role("button", name=f"Move up {second['title']}").click()
    expect(titles).to_have_text([second["title"], first["title"]])
    expect(gina.page.locator("#list-items .list-item__note")).to_have_text(["The one I keep.", "Where it started."])
    gina.screenshot("list-owner")

    # Someone logged out reads it as it now is, without the owner's buttons.
    reader = person("reader", viewport=PHONE)
    reader.page.goto(list_url)
    expect(reader.page.locator("#list-name")).to_have_text("Desert island")
    expect(reader.page.locator("#list-owner")).to_have_text(gina.username)
    expect(reader.page.locator("#list-items .list-item__title")).to_have_text([second["title"], first["title"]])
    expect(reader.page.get_by_role("button", name=re.compile("Move"))).to_have_count(0)
    width = reader.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"no sideways scrolling at phone width: {width}"
    reader.screenshot("list-public")
