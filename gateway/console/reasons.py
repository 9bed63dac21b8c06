"""The detectors' reasons, as the console shows them: in the reader's language.

What a detector, the flagger or the tree watch says about a click or a sharer is stored and sent
as it is made: English, stable, for developers (``Flag.reasons``, the API, the event stream).
The console shows each through ``reason`` (a Jinja filter): a reason without values by its exact
text, one that carries values (counts, names, seconds) by pattern, and a reason that holds another
one ("the sharer is under review for <why>", "part of <a chain>", a click's
"<detector>: <why>") with the inner one translated too, and the detectors' names in words
(gateway.console.labels: in English too, so ``referrer_review: ...`` reads "review feedback: ...";
a name that is an English word reads as stored). An unknown reason is shown as it is
rather than hidden.

Nothing here runs on the click path: the translation happens when a console page renders.
``tests/test_console_reasons.py`` reads every reason the detectors' source can produce and fails
when one has no entry here.
"""

from __future__ import annotations

import re

from flask_babel import gettext

from detectors.review import SOURCES
from gateway.console.labels import label
from gateway.i18n import N_
from gateway.trees import COLLUSION

#: Reasons without values: the click detectors', and why a sharer is under review.
_EXACT: dict[str, str] = {
    message: message
    for message in (
        # detectors.crawlers
        N_("user agent is a known crawler or automation tool"),
        # detectors.review
        N_("the sharer was found cheating by a reviewer"),
        N_("opened from a public web page: the sharer's link is posted publicly"),
        N_("an open finding"),
        N_("review"),
        # detectors.network
        N_("opened from a datacenter network"),
        N_("opened through a known VPN"),
        # detectors.headers
        N_("no Accept-Language header"),
        N_("malformed Accept-Language header"),
        N_("Accept-Language is a bare '*'"),
        N_("client hints sent by a browser that does not send them"),
        N_("client hints disagree with the user agent about being mobile"),
        # detectors.selfreferral
        N_("the sharer's own browser opened their link"),
        N_("opened from the sharer's own phone and address"),
        N_("same phone model and address as the sharer, on a shared network"),
        N_("opened from the sharer's own network"),
        # detectors.conversion
        N_("the conversion arrived before the click"),
        # detectors.review.SOURCES: why a sharer is under review
        N_("most clicks on their links looked suspicious"),
        N_("accounts joined under them from their own device or one phone"),
        N_("a chain of joins from few phones or networks"),
        N_("a burst of joins from few devices or networks"),
        N_("sharers converting each other's links"),
        N_("one phone made accounts for them and other sharers"),
        N_("a network filled with joins under them"),
        N_("sign-ups seconds after the click"),
        N_("their link is opened from public web pages"),
        N_("their link is fetched mostly by scripts"),
        # gateway.trees.COLLUSION: collusion found in another campaign
        N_("found in a ring of sharers converting each other's links"),
        N_("found among the sharers one phone made accounts for"),
    )
}
assert set(SOURCES.values()) <= set(_EXACT), "a source's description is missing above"
assert set(COLLUSION.values()) <= set(_EXACT), "a collusion finding is missing above"

#: The clauses a burst's reason may end with (gateway.trees), each with its leading comma.
_BURST_CLAUSES: dict[str, str] = {
    clause: clause
    for clause in (
        N_(", sharing a browser"),
        N_(", at clockwork intervals"),
        N_(", each signing up as quickly after the click"),
    )
}
_BURST = re.compile(
    r"^(?P<n>\d+) children joined within (?P<minutes>\d+) min from (?P<networks>\d+) "
    r"network\(s\), (?P<devices>\d+) device\(s\)(?P<clauses>(?:, [^,]+)*)$"
)

#: Reasons that carry values, and the catalogue's text for them. A group named ``reason`` holds
#: another reason, translated in turn.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        # a click's reasons (detectors.engine): "<detector>: <reason>", and the model's score
        (r"^model: (?P<score>-?[\d.]+)$", N_("model: %(score)s")),
        (r"^(?P<detector>[a-z_]+): (?P<reason>.+)$", N_("%(detector)s: %(reason)s")),
        # detectors.review
        (
            r"^the sharer is under review for (?P<reason>.+)$",
            N_("the sharer is under review for %(reason)s"),
        ),
        # detectors.headers
        (
            r"^client hints say (?P<platform>.+), the user agent does not$",
            N_("client hints say %(platform)s, the user agent does not"),
        ),
        (
            r"^X-Requested-With names (?P<package>\S+), the user agent does not$",
            N_("X-Requested-With names %(package)s, the user agent does not"),
        ),
        # detectors.velocity
        (
            r"^(?P<n>\d+) clicks from one IP within a minute$",
            N_("%(n)s clicks from one IP within a minute"),
        ),
        (
            r"^the same browser clicked (?P<n>\d+) times within a minute$",
            N_("the same browser clicked %(n)s times within a minute"),
        ),
        (
            r"^(?P<n>\d+) clicks from one IP this hour, by only (?P<browsers>\d+) browsers$",
            N_("%(n)s clicks from one IP this hour, by only %(browsers)s browsers"),
        ),
        # detectors.fanout, detectors.timing, detectors.conversion
        (
            r"^this link was opened from (?P<n>\d+) networks in the last hour$",
            N_("this link was opened from %(n)s networks in the last hour"),
        ),
        (
            r"^clicks on this link arrive every (?P<seconds>[\d.]+) s like clockwork$",
            N_("clicks on this link arrive every %(seconds)s s like clockwork"),
        ),
        (
            r"^signed up (?P<seconds>-?[\d.]+) s after the click$",
            N_("signed up %(seconds)s s after the click"),
        ),
        # detectors.flagging, gateway.flagger: a sharer's clicks taken together
        (
            r"^(?P<n>\d+) clicks from the sharer's own device or IP$",
            N_("%(n)s clicks from the sharer's own device or IP"),
        ),
        (
            r"^(?P<n>\d+) of (?P<total>\d+) clicks suspicious \((?P<detectors>.*)\)$",
            N_("%(n)s of %(total)s clicks suspicious (%(detectors)s)"),
        ),
        (
            r"^(?P<n>\d+) of (?P<total>\d+) clicks came from datacenter networks \(servers, "
            r"not people's phones\)$",
            N_(
                "%(n)s of %(total)s clicks came from datacenter networks (servers, not people's "
                "phones)"
            ),
        ),
        (
            r"^(?P<share>\d+%) of the requests on their link came from scripts or headless "
            r"browsers$",
            N_("%(share)s of the requests on their link came from scripts or headless browsers"),
        ),
        (
            r"^their link is opened from public web pages \((?P<share>\d+%) of clicks\)$",
            N_("their link is opened from public web pages (%(share)s of clicks)"),
        ),
        # gateway.trees: joins
        (
            r"^(?P<user>.+) joined from (?P<parent>.+)'s own browser or device$",
            N_("%(user)s joined from %(parent)s's own browser or device"),
        ),
        (
            r"^(?P<n>\d+) accounts \((?P<names>.*)\) joined under them from their own device$",
            N_("%(n)s accounts (%(names)s) joined under them from their own device"),
        ),
        (
            r"^made on (?P<owner>.+)'s phone, and (?P<user>.+) joined under them from it$",
            N_("made on %(owner)s's phone, and %(user)s joined under them from it"),
        ),
        (
            r"^(?P<n>\d+) accounts \((?P<names>.*)\) joined under them from one phone$",
            N_("%(n)s accounts (%(names)s) joined under them from one phone"),
        ),
        (
            r"^(?P<n>\d+) accounts \((?P<names>.*)\) made in a row on one phone joined under "
            r"them, each within (?P<seconds>\d+) s of its click$",
            N_(
                "%(n)s accounts (%(names)s) made in a row on one phone joined under them, each "
                "within %(seconds)s s of its click"
            ),
        ),
        (
            r"^accounts made on one phone \(first used by (?P<owner>.+)\) joined under "
            r"(?P<n>\d+) sharers: (?P<names>.*)$",
            N_(
                "accounts made on one phone (first used by %(owner)s) joined under %(n)s "
                "sharers: %(names)s"
            ),
        ),
        (
            r"^a chain of (?P<n>\d+) joins in (?P<minutes>-?\d+) min from (?P<networks>\d+) "
            r"network\(s\), (?P<phones>\d+) phone\(s\)$",
            N_(
                "a chain of %(n)s joins in %(minutes)s min from %(networks)s network(s), "
                "%(phones)s phone(s)"
            ),
        ),
        (r"^part of (?P<reason>.+)$", N_("part of %(reason)s")),
        (
            r"^sharers converting each other's links: (?P<cycle>.+)$",
            N_("sharers converting each other's links: %(cycle)s"),
        ),
        (
            r"^(?P<reason>.+) in campaign (?P<name>\S+)$",
            N_("%(reason)s in campaign %(name)s"),
        ),
        (
            r"^(?P<n>\d+) participants joined from one browser$",
            N_("%(n)s participants joined from one browser"),
        ),
        (
            r"^(?P<n>\d+) of (?P<total>\d+) joins from (?P<prefix>\S+) this hour are under "
            r"(?P<parent>.+)$",
            N_("%(n)s of %(total)s joins from %(prefix)s this hour are under %(parent)s"),
        ),
        (
            r"^(?P<n>\d+) of (?P<total>\d+) sign-ups under them came within (?P<seconds>\d+) s "
            r"of the click$",
            N_("%(n)s of %(total)s sign-ups under them came within %(seconds)s s of the click"),
        ),
    )
)
#: A detector and the clicks it fired on, in a list of them: "timing ×298".
_DETECTOR_COUNT = re.compile(r"(?P<name>[a-z_]+) ×(?P<n>\d+)")
_BURST_TEXT = N_(
    "%(n)s children joined within %(minutes)s min from %(networks)s network(s), "
    "%(devices)s device(s)"
)


def translated_reason(reason: str) -> str:
    """``reason`` (a detector's, the flagger's or the tree watch's English reason) in the
    current request's language; as it is when it is not a known one."""
    exact = _EXACT.get(reason)
    if exact is not None:
        return str(gettext(exact))
    burst = _BURST.match(reason)
    if burst is not None:
        clauses = [", " + clause for clause in burst["clauses"].split(", ")[1:]]
        if all(clause in _BURST_CLAUSES for clause in clauses):
            values = {k: v for k, v in burst.groupdict().items() if k != "clauses"}
            return str(gettext(_BURST_TEXT, **values)) + "".join(
                str(gettext(clause)) for clause in clauses
            )
    for pattern, text in _PATTERNS:
        found = pattern.match(reason)
        if found is not None:
            values = found.groupdict()
            if "reason" in values:
                values["reason"] = translated_reason(values["reason"])
            if "detector" in values:
                values["detector"] = label(values["detector"])
            if "detectors" in values:
                listed = _DETECTOR_COUNT.sub(_detector_count, values["detectors"])
                values["detectors"] = listed.replace(", ", str(gettext(", ")))
            if "names" in values:  # the accounts or sharers a finding names: "a, b, c"
                values["names"] = values["names"].replace(", ", str(gettext(", ")))
            return str(gettext(text, **values))
    return reason


def _detector_count(found: re.Match[str]) -> str:
    return label(found["name"]) + " ×" + found["n"]
