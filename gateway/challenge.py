"""The challenge: an interstitial a person passes with one tap, which scripts tend not to.

Not a captcha service. The page carries a form whose one button POSTs a signed token naming the
click; an answer that arrives sooner after the page was served than anyone reads and taps, or
much later, is shown the page again. Link scripts fetch URLs; they rarely read a page, wait and
submit its form. Passing does not make the click creditable on its own: conversions from
challenged clicks are held for review (see gateway.conversions).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from itsdangerous import BadSignature, Signer

from gateway.validation import ascii_digits

SALT = "refgate.challenge.v1"
#: Faster than this, nobody read the page and tapped.
MIN_SECONDS = 0.8
#: Slower than this, the page is served again (a stale tab, a replayed form).
MAX_SECONDS = 15 * 60


@dataclass(frozen=True)
class ChallengeResult:
    #: The click the answer is for (None when the token is not ours).
    click_id: str | None
    #: "" when the answer passes; else "invalid", "too_fast" or "expired".
    problem: str = ""

    @property
    def passed(self) -> bool:
        return self.click_id is not None and not self.problem


class ChallengeSigner:
    def __init__(self, secret_keys: tuple[bytes, ...]) -> None:
        # itsdangerous signs with the last key and verifies with all: newest last.
        self._signer = Signer(list(reversed(secret_keys)), salt=SALT)

    def issue(self, click_id: str, link_token: str, now: float | None = None) -> str:
        served_ms = int((time.time() if now is None else now) * 1000)
        return self._signer.sign(f"{click_id}|{link_token}|{served_ms}").decode()

    def check(self, value: str, link_token: str, now: float | None = None) -> ChallengeResult:
        """The click id when the answer is acceptable; otherwise why not."""
        try:
            raw = self._signer.unsign(value).decode()
        except (BadSignature, UnicodeDecodeError):
            return ChallengeResult(None, "invalid")
        click_id, bound_token, served = [*raw.split("|"), "", ""][:3]
        if bound_token != link_token or not ascii_digits(served):
            return ChallengeResult(None, "invalid")
        age = (time.time() if now is None else now) - int(served) / 1000
        if age < MIN_SECONDS:
            return ChallengeResult(click_id, "too_fast")
        if age > MAX_SECONDS:
            return ChallengeResult(click_id, "expired")
        return ChallengeResult(click_id)
