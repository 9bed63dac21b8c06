"""The words the services use for states, kinds and decisions, as staff read them.

Stored and sent as they are (``open``, ``held``, ``qr_first``...): codes, for the API, exports,
URLs and filters. People read them through ``label``: each code has an English label (the msgid,
in words: ``qr_first`` reads "QR code first", never the code) and its Chinese in the catalogues.
Labels are lowercase because they are also set inside sentences ("rewards 2 held → credited",
"Flag … decided fraud", a reason's "(timing ×298)"). A code that is already a plain English word
is its own label. An unknown code is shown as it is.
"""

from __future__ import annotations

from flask_babel import gettext

from gateway.i18n import N_


def _plain(*words: str) -> dict[str, str]:
    """Codes that read as they are in English (``open``, ``held``): their own msgid."""
    return {word: word for word in words}


#: Code -> its English label (a msgid). One table for every code the console shows.
LABELS: dict[str, str] = {
    # flags and reviews
    **_plain(N_("open"), N_("fraud"), N_("click"), N_("participant"), N_("cluster")),
    **_plain(N_("suspect")),
    "legit": N_("legitimate"),
    "referrer": N_("sharer"),
    # rewards
    **_plain(N_("credited"), N_("held"), N_("denied")),
    "clawed_back": N_("clawed back"),
    # campaigns and links
    **_plain(N_("live"), N_("active"), N_("paused"), N_("ended"), N_("expired"), N_("revoked")),
    "not_started": N_("not started"),
    # platforms and strategies
    **_plain(N_("ok"), N_("blocked"), N_("redirect")),
    "guide": N_("guide page"),
    "qr_first": N_("QR code first"),
    # a platform's status on a campaign's page: it is the campaign's links the platform refuses
    # (in Chinese 屏蔽, as on its buttons; a click's "blocked" outcome is refgate's 拦截)
    "platform:ok": N_("ok"),
    "platform:blocked": N_("links blocked"),
    # click decisions
    **_plain(N_("allow"), N_("challenge"), N_("block")),
    "deny_credit": N_("no credit"),
    # why a reward is held or denied (gateway.conversions, convert.lua, settle_reward.lua):
    # shown with the code beside (a title), which the risk team matches with the API and exports
    **_plain(N_("flagged")),
    "no_reward_configured": N_("no reward set up"),
    "referrer_fraud": N_("sharer judged fraudulent"),
    "click_fraud": N_("click judged fraudulent"),
    "budget_exhausted": N_("budget used up"),
    "referrer_cap": N_("sharer's limit reached"),
    "daily_cap": N_("daily limit reached"),
    "referrer_under_review": N_("sharer under review"),
    "click_denied": N_("click earns no credit"),
    "click_blocked": N_("click blocked"),  # click_<outcome> (gateway.conversions.creditable)
    "click_preview": N_("link preview only"),
    "unscored_click": N_("click not scored (store outage)"),
    "challenged_click": N_("click was challenged"),
    "conversion_before_click": N_("conversion before the click"),
    "conversion_too_fast": N_("conversion too fast"),
    "reviewed_legit": N_("reviewed: legitimate"),
    "reviewed_fraud": N_("reviewed: fraud"),
    "self_referral": N_("self-referral"),
    # the click detectors (their ``name``, in detectors/), shown in the flag page's detector
    # table and inside reasons ("velocity: ...", "(timing ×298, velocity ×294)")
    **_plain(N_("network"), N_("velocity"), N_("timing"), N_("crawler"), N_("headers")),
    **_plain(N_("model")),
    "fanout": N_("fan-out"),
    "referrer_review": N_("review feedback"),
    # webhook deliveries (gateway.webhooks)
    **_plain(N_("delivered"), N_("retrying"), N_("failed")),
    # a flag's evidence, and a referrer's click tally (gateway.flagger, add_tallies)
    **_plain(N_("clicks"), N_("suspicious"), N_("decision")),
    "self": N_("own clicks"),
    "external": N_("from public pages"),
    "datacenter": N_("from datacenters"),
    "parent": N_("inviter"),
    "ts": N_("time"),
    "prefix": N_("network prefix"),
    # which finder raised a flag's findings (a flag's sources: gateway.flagger's clicks,
    # gateway.trees' tree watch), in the flag page's table of sources
    "clicks:posted": N_("clicks: link posted publicly"),
    "clicks:automated": N_("clicks: automated visits"),
    "tree:self": N_("referral tree: own devices"),
    "tree:factory": N_("referral tree: one phone, many sign-ups"),
    "tree:chain": N_("referral tree: invitation chain"),
    "tree:burst": N_("referral tree: burst of joins"),
    "tree:ring": N_("referral tree: ring"),
    "tree:browser": N_("referral tree: shared browser"),
    "tree:prefix": N_("referral tree: same network prefix"),
    "tree:fast": N_("referral tree: sign-up right after the click"),
    # roles of staff and API keys (gateway.apikeys.Role): the names the docs and CLI use
    **_plain(N_("admin"), N_("marketing"), N_("risk"), N_("conversion")),
}


def label(word: object) -> str:
    """``word`` in the reader's language when it is one of the services' codes."""
    text = str(word)
    known = LABELS.get(text)
    return str(gettext(known)) if known is not None else text
