"""The words the services use for states, kinds and decisions, as staff read them.

Stored and sent as they are (``open``, ``held``, ``qr_first``...), shown through ``label``: in
the catalogues, so a Chinese console does not show English codes. An unknown word is shown as
it is.
"""

from __future__ import annotations

from flask_babel import gettext

from gateway.i18n import N_

LABELS = {
    word: word
    for word in (
        # flags and reviews
        N_("open"),
        N_("fraud"),
        N_("legit"),
        N_("click"),
        N_("referrer"),
        N_("participant"),
        N_("cluster"),
        N_("suspect"),
        # rewards
        N_("credited"),
        N_("held"),
        N_("denied"),
        N_("clawed_back"),
        # campaigns and links
        N_("live"),
        N_("active"),
        N_("paused"),
        N_("ended"),
        N_("not_started"),
        N_("expired"),
        N_("revoked"),
        # platforms and strategies
        N_("ok"),
        N_("blocked"),
        N_("redirect"),
        N_("guide"),
        N_("qr_first"),
        # click decisions
        N_("allow"),
        N_("deny_credit"),
        N_("challenge"),
        N_("block"),
        # why a reward is held or denied (gateway.conversions, convert.lua, settle_reward.lua)
        N_("flagged"),
        N_("no_reward_configured"),
        N_("referrer_fraud"),
        N_("click_fraud"),
        N_("budget_exhausted"),
        N_("referrer_cap"),
        N_("daily_cap"),
        N_("referrer_under_review"),
        N_("click_denied"),
        N_("click_blocked"),  # click_<outcome> (gateway.conversions.creditable)
        N_("click_preview"),
        N_("unscored_click"),
        N_("challenged_click"),
        N_("conversion_before_click"),
        N_("conversion_too_fast"),
        N_("reviewed_legit"),
        N_("reviewed_fraud"),
        N_("self_referral"),
        # the click detectors (their ``name``, in detectors/), shown in the flag page's detector
        # table and inside reasons ("velocity: ...", "(timing ×298, velocity ×294)")
        N_("network"),
        N_("velocity"),
        N_("fanout"),
        N_("timing"),
        N_("referrer_review"),
        N_("crawler"),
        N_("headers"),
        N_("model"),
        # webhook deliveries (gateway.webhooks)
        N_("delivered"),
        N_("retrying"),
        N_("failed"),
        # a flag's evidence, and a referrer's click tally (gateway.flagger, add_tallies)
        N_("clicks"),
        N_("suspicious"),
        N_("self"),
        N_("external"),
        N_("datacenter"),
        N_("parent"),
        N_("ts"),
        N_("prefix"),
        N_("decision"),
        # which finder raised a flag's findings (a flag's sources: gateway.flagger's clicks,
        # gateway.trees' tree watch), in the flag page's table of sources
        N_("clicks:posted"),
        N_("clicks:automated"),
        N_("tree:self"),
        N_("tree:factory"),
        N_("tree:chain"),
        N_("tree:burst"),
        N_("tree:ring"),
        N_("tree:browser"),
        N_("tree:prefix"),
        N_("tree:fast"),
        # roles of staff and API keys (gateway.apikeys.Role)
        N_("admin"),
        N_("marketing"),
        N_("risk"),
        N_("conversion"),
    )
}


def label(word: object) -> str:
    """``word`` in the reader's language when it is one of the services' words."""
    text = str(word)
    known = LABELS.get(text)
    return str(gettext(known)) if known is not None else text
