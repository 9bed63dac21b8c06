"""The services' messages, as the console shows them: in the reader's language.

The API's messages are English, stable and meant for developers. When a console page shows one
(a field the campaign service refused, a campaign or person that is not there), it goes through
``translated``: the known messages are in the catalogues, by their exact text or, where they
carry a value, by pattern. An unknown message is shown as it is rather than hidden.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from flask_babel import gettext

from gateway.campaigns import PATTERN_WORDS
from gateway.i18n import N_

#: Messages without values: the campaign fields' checks, the destination rules, the accounts'.
_EXACT: dict[str, str] = {
    message: message
    for message in (
        N_("must not be blank"),
        N_("must not contain control characters"),
        N_("the form is damaged; open the page again"),
        N_("is counted in units and must be at least amount (one reward)"),
        N_("must not be null"),
        N_("unknown field"),
        N_("must be an ISO 8601 date-time string with a timezone"),
        N_("must be after starts_at"),
        N_("thresholds must satisfy deny_credit_at <= challenge_at <= block_at"),
        N_("must be a string"),
        N_("must not be empty"),
        N_("contains whitespace or control characters"),
        N_("contains a backslash"),
        N_("must be an absolute http:// or https:// URL"),
        N_("has no host"),
        N_("must not contain user information (user@host)"),
        N_("host must be a domain name, not an IP address"),
        N_("host must not be percent-encoded"),
        N_("host is not a valid domain name"),
        N_("host must be a fully qualified domain name"),
        N_("port must be a number"),
        N_("port must be between 1 and 65535"),
        N_("must not carry rg_click: refgate adds each click's own"),
        N_("the campaign changed while saving; retry"),
        N_(
            "the campaign was changed by someone else since this form was opened; reload it to "
            "see their changes"
        ),
        N_("an ended campaign cannot be paused or resumed"),
        N_("the campaign ended at its ends_at: move ends_at later to pause or resume it"),
        N_(
            "must be 1 to 64 lowercase ASCII letters (a-z), digits (0-9) or '-', not starting or "
            "ending with '-'"
        ),
        N_("must be 1 to 128 ASCII letters (A-Z, a-z), digits (0-9) or . _ : @ + -"),
        N_("not an email address"),
        N_("unknown language"),
        # webhook endpoints' URLs (gateway.webhooks.check_url)
        N_("contains whitespace, control characters or a backslash"),
        N_("is not a valid URL"),
        N_("must not have a fragment"),
        N_("port must be a number between 1 and 65535"),
        N_(
            "is a private, loopback, link-local or reserved address (allowed only with "
            "REFGATE_WEBHOOK_ALLOW_PRIVATE)"
        ),
        N_("host looks like an IP address in an unusual spelling; write it dotted"),
        N_(
            "host must be a public, fully qualified domain name (local names only with "
            "REFGATE_WEBHOOK_ALLOW_PRIVATE)"
        ),
    )
}
# pydantic's own messages, said as the console says them.
_EXACT["String should have at least 1 character"] = _EXACT["must not be empty"]
_EXACT["Field required"] = N_("required")
_EXACT["Input should have timezone info"] = N_(
    "a date and time with its time zone, such as 2026-02-01T10:00:00+08:00"
)
assert set(PATTERN_WORDS.values()) <= set(_EXACT), "a pattern's words are missing above"

#: Messages that carry a value (a number, a name), and the catalogue's text for them.
_PATTERNS = (
    (
        re.compile(r"^String should have at least (?P<n>\d+) characters?$"),
        N_("at least %(n)s characters"),
    ),
    (
        re.compile(r"^String should have at most (?P<n>\d+) characters?$"),
        N_("at most %(n)s characters"),
    ),
    (
        re.compile(r"^Input should be greater than or equal to (?P<n>-?\d+)$"),
        N_("%(n)s or more"),
    ),
    (re.compile(r"^Input should be greater than (?P<n>-?\d+)$"), N_("more than %(n)s")),
    (
        re.compile(r"^Input should be less than or equal to (?P<n>-?\d+)$"),
        N_("at most %(n)s"),
    ),
    (re.compile(r"^Input should be a valid integer"), N_("a whole number")),
    (
        re.compile(r"^Input should be a valid (datetime|date)"),
        N_("a date and time with its time zone, such as 2026-02-01T10:00:00+08:00"),
    ),
    (re.compile(r"^Input should be a valid string"), N_("must be text")),
    (re.compile(r"^List should have at least 1 item"), N_("choose at least one")),
    (
        re.compile(r"^List should have at most (?P<n>\d+) items?"),
        N_("at most %(n)s of them"),
    ),
    (re.compile(r"^Input should be '"), N_("not one of the choices")),
    (
        re.compile(r"^at most (?P<n>\d+) endpoints$"),
        N_("There are %(n)s endpoints already, the most there can be: delete one first."),
    ),
    (re.compile(r"^longer than (?P<n>\d+) characters$"), N_("longer than %(n)s characters")),
    (
        re.compile(r"^host (?P<name>\S+) is not in REFGATE_DESTINATION_HOSTS$"),
        N_("host %(name)s is not among the allowed destination hosts"),
    ),
    (
        re.compile(r"^host is not a valid domain name \(.*\)$"),
        N_("host is not a valid domain name"),
    ),
    (
        re.compile(r"^a campaign with slug '(?P<name>[^']*)' exists$"),
        N_("a campaign with the slug %(name)s exists"),
    ),
    (
        re.compile(r"^a password has (?P<low>\d+)-(?P<high>\d+) characters$"),
        N_("a password has %(low)s to %(high)s characters"),
    ),
    (re.compile(r"^(?P<name>\S+) already has an account$"), N_("%(name)s already has an account")),
    (re.compile(r"^one of (?P<names>.+)$"), N_("one of: %(names)s")),
    (re.compile(r"^name must be 1-100 characters$"), N_("The name has 1 to 100 characters.")),
    (
        re.compile(r"^must be at least (?P<n>\d+): that much is already spent or held$"),
        N_("must be at least %(n)s: that much is already spent or held"),
    ),
    (
        re.compile(r"^(?P<n>\d+) units are already spent or held: to stop new rewards"),
        N_("%(n)s units are already spent or held: to stop new rewards, set the budget to %(n)s"),
    ),
    (
        re.compile(r"^no installed font can draw (?P<chars>'.*'); leave them out or install"),
        N_("no installed font can draw %(chars)s: leave them out or install a font that has them"),
    ),
    (re.compile(r"^no campaign '(?P<name>.*)'$"), N_("There is no campaign %(name)s.")),
    (
        re.compile(r"^no campaigns (?P<names>'.*')$"),
        N_("There are no campaigns %(names)s."),
    ),
    (
        re.compile(r"^no failed delivery of ['\"]?(?P<id>.*?)['\"]? to this endpoint$"),
        N_(
            "Event %(id)s has no failed delivery to this endpoint (any more): it was redelivered "
            "already or never failed."
        ),
    ),
    (
        re.compile(r"^'(?P<name>.*)' is not in this campaign's tree$"),
        N_("%(name)s is not in this campaign's referral tree."),
    ),
    (
        re.compile(r"^'(?P<name>.*)' has no links in this campaign$"),
        N_("%(name)s has no links in this campaign."),
    ),
)


def translated(message: str) -> str:
    """``message`` (a service's English message) in the current request's language."""
    exact = _EXACT.get(message)
    if exact is not None:
        return str(gettext(exact))
    for pattern, text in _PATTERNS:
        found = pattern.match(message)
        if found is not None:
            values = found.groupdict()
            if "names" in values:  # a list, "a, b", with the reader's separator (a、b)
                values["names"] = values["names"].replace(", ", str(gettext(", ")))
            return str(gettext(text, **values))
    return message


def translated_fields(fields: Mapping[str, str]) -> dict[str, str]:
    return {name: translated(message) for name, message in fields.items()}
