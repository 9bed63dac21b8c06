"""Public pages (the click path's fallback, challenge, preview, gone, not-found and busy pages)
carry a Content-Security-Policy that keeps them out of other sites' frames and allows no inline
script, as the console's pages do; and addresses people mistype get a page, never an error."""

from __future__ import annotations

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import BROWSER
from tests.test_challenge import NO_LANGUAGE, WECHAT, make_campaign


def assert_framing_refused(page: TestResponse, what: str) -> None:
    csp = page.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp, (what, csp)
    assert "unsafe-inline" not in csp and "default-src 'none'" in csp, (what, csp)
    # No form-action: the challenge's form is answered with a redirect to the destination.
    assert "form-action" not in csp, (what, csp)
    assert page.headers.get("X-Frame-Options") == "DENY", what
    assert page.headers.get("X-Content-Type-Options") == "nosniff", what


def test_every_public_page_refuses_framing_and_inline_script(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    token = make_campaign(client, admin)
    challenge = client.get(f"/s/{token}", headers=NO_LANGUAGE)
    assert challenge.status_code == 200 and b'name="c"' in challenge.data
    assert_framing_refused(challenge, "challenge")
    fallback = client.get(f"/s/{token}", headers={**BROWSER, "User-Agent": WECHAT})
    assert fallback.status_code == 200 and b"copy.js" in fallback.data
    assert_framing_refused(fallback, "fallback")
    preview = client.get(f"/s/{token}", headers={"User-Agent": "facebookexternalhit/1.1"})
    assert preview.status_code == 200 and b"og:title" in preview.data
    assert_framing_refused(preview, "preview")
    missing = client.get("/s/not-a-token", headers=BROWSER)
    assert missing.status_code == 404
    assert_framing_refused(missing, "not found")
    # The redirect itself is not a page: nothing to frame.
    assert client.get(f"/s/{token}", headers=BROWSER).status_code in (302, 200)
    client.patch("/api/v1/campaigns/tea", json={"action": "end"}, headers=admin)
    gone = client.get(f"/s/{token}", headers=BROWSER)
    assert gone.status_code == 410
    assert_framing_refused(gone, "gone")


def test_a_failed_challenge_answer_page_refuses_framing(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    token = make_campaign(client, admin)
    again = client.post(f"/s/{token}/go", data={"c": "forged"}, headers=NO_LANGUAGE)
    assert again.status_code == 200 and b'name="c"' in again.data
    assert_framing_refused(again, "challenge again")
