"""Blind-first rating and the people features' editing pages in a real browser, against
`liner up` (see conftest.py): a person turns blind-first on on their profile, opens an
album others reviewed and sees neither the score nor the reviews, rates it, and sees
both at once; a list renamed, described and an album's note edited by its owner; the
page of a person's liked reviews, linked from their profile.
"""

from conftest import api
from playwright.sync_api import expect

REVIEWS = "/api/users-reviews"


def test_a_blind_first_person_sees_the_score_only_after_rating(person):
    alice, bob = person("alice"), person("bob")
    res = api(alice, "GET", "/api/catalog/albums?limit=8")
    assert res.ok, res.text()
    album = res.json()["items"][7]
    alice.sign_up()
    body = {"albumId": album["id"], "rating": 4.5, "reviewText": "Every chord lands."}
    res = api(alice, "POST", f"{REVIEWS}/reviews", body, alice.token())
    assert res.status == 201, res.text()

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

    bob.page.locator("label[for='review-rating-3']").click()
    bob.page.get_by_role("button", name="Post review").click()
    expect(bob.page.locator(".form-status")).to_have_text("Saved.")
    expect(bob.page.locator("#score-weighted")).to_be_visible()
    expect(bob.page.locator("#blind-note")).to_have_count(0)
    expect(bob.page.locator("#reviews .review", has_text="Every chord lands.")).to_be_visible()
    expect(bob.page.locator("#reviews .review")).to_have_count(2)
    bob.screenshot("blind-first-revealed")


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
