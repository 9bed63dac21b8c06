"""The console shows the detectors' (English, stored, sent by the API) reasons in the reader's
language.

The reasons are read from the source of truth, the code that makes them: every ``Signal``'s
reason, every reason of a ``FlagCandidate`` or ``ReferrerFinding``, every ``reasons.append``,
anywhere in detectors/ and gateway/ (today: the click detectors, the flagger and the tree
watch). Their f-strings are rendered with sample values (names resolved through the function's
and the module's assignments, functions of the module and its tables), so a new reason, or a
new branch of one, fails here until gateway.console.reasons can translate it.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from flask import Flask

from detectors.base import ClickInput, History
from detectors.engine import Engine
from gateway.console.reasons import translated_reason
from gateway.flags import FlagCandidate
from gateway.services import Services
from tests.conftest import bearer
from tests.console_helpers import add_staff, as_role, flagged_campaign

ROOT = Path(__file__).resolve().parent.parent
#: The code that makes the reasons the console shows: all of it is read, so a reason made in a
#: new place is found too.
SOURCES = sorted([*(ROOT / "detectors").rglob("*.py"), *(ROOT / "gateway").rglob("*.py")])
ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en"}
HAN = re.compile(r"[\u4e00-\u9fff]")
#: Three English words in a row: a sentence left untranslated.
ENGLISH = re.compile(r"[A-Za-z']{2,} [A-Za-z']{2,} [A-Za-z']{2,}")
#: What an expression the reader cannot follow (a parameter, an attribute) renders as.
UNKNOWN = "\x00"
#: Reasons passed on whole from elsewhere (a click's stored reasons, a finding's): not made here.
PASSED_ON = {"tuple(event['reasons'])", "finding.reasons", "reasons", "tuple(reasons)"}


def _sample(spec: str) -> str:
    """A value for a formatted field the reader cannot follow, by its format spec."""
    if spec.endswith("%"):
        return "83%"
    if spec.endswith("f"):
        return "2.5" if spec != ".0f" else "30"
    return "7"


@dataclass
class _Module:
    tree: ast.Module
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)
    names: dict[str, list[ast.expr]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> _Module:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = cls(tree)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                module.functions[node.name] = node
            for target, value in _assignments(node):
                module.names.setdefault(target, []).append(value)
        return module


def _assignments(node: ast.AST) -> Iterator[tuple[str, ast.expr]]:
    if isinstance(node, ast.Assign):
        for target in node.targets:
            if isinstance(target, ast.Name):
                yield target.id, node.value
    elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
        yield node.target.id, node.value


class _Reader:
    """Renders an expression of a module into the texts it can evaluate to."""

    def __init__(self, module: _Module, local: dict[str, list[ast.expr]]) -> None:
        self.module = module
        self.local = local

    def texts(self, node: ast.expr, depth: int = 0) -> list[str]:
        if depth > 8:
            return [UNKNOWN]
        more = depth + 1
        if isinstance(node, ast.Constant):
            return [node.value] if isinstance(node.value, str) else [UNKNOWN]
        if isinstance(node, ast.JoinedStr):
            parts = [self._part(value, more) for value in node.values]
            return ["".join(p) for p in itertools.islice(itertools.product(*parts), 64)]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.texts(node.left, more), self.texts(node.right, more)
            return [a + b for a, b in itertools.islice(itertools.product(left, right), 64)]
        if isinstance(node, ast.IfExp):
            return self.texts(node.body, more) + self.texts(node.orelse, more)
        if isinstance(node, ast.BoolOp):
            return [t for value in node.values for t in self.texts(value, more)]
        if isinstance(node, ast.Name):
            values = self.local.get(node.id) or self.module.names.get(node.id)
            if not values:
                return [UNKNOWN]
            return [t for value in values for t in self.texts(value, more)]
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            return self._table(node.value.id, more) or [UNKNOWN]
        if isinstance(node, ast.Call):
            return self._call(node, more)
        return [UNKNOWN]

    def _part(self, value: ast.expr, depth: int) -> list[str]:
        if isinstance(value, ast.FormattedValue):
            spec = ""
            if isinstance(value.format_spec, ast.JoinedStr):
                spec = "".join(
                    str(v.value) for v in value.format_spec.values if isinstance(v, ast.Constant)
                )
            texts = self.texts(value.value, depth) if not spec else [UNKNOWN]
            return [_sample(spec) if t == UNKNOWN else t for t in texts]
        return self.texts(value, depth)

    def _table(self, name: str, depth: int) -> list[str]:
        """The values of a module-level dict literal."""
        for value in self.module.names.get(name, []):
            if isinstance(value, ast.Dict):
                return [t for v in value.values for t in self.texts(v, depth)]
        return []

    def _call(self, node: ast.Call, depth: int) -> list[str]:
        func = node.func
        if isinstance(func, ast.Name) and func.id in self.module.functions:
            # A function of the module: whatever (non-empty) text it returns.
            body = self.module.functions[func.id]
            reader = _Reader(self.module, _locals(body))
            returned = [
                t
                for ret in ast.walk(body)
                if isinstance(ret, ast.Return) and ret.value is not None
                for t in reader.texts(ret.value, depth)
            ]
            return [t for t in returned if t] or [UNKNOWN]
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "get"
            and isinstance(func.value, ast.Name)
        ):
            # table.get(key, default): any of the table's values or the default.
            values = self._table(func.value.id, depth)
            if values:
                default = [t for arg in node.args[1:] for t in self.texts(arg, depth)]
                return values + default
        return [UNKNOWN]


def _locals(function: ast.FunctionDef) -> dict[str, list[ast.expr]]:
    found: dict[str, list[ast.expr]] = {}
    for node in ast.walk(function):
        for target, value in _assignments(node):
            found.setdefault(target, []).append(value)
    return found


def _reason_expressions(function: ast.FunctionDef) -> Iterator[tuple[int, ast.expr]]:
    """(line, expression) of each reason the function makes."""
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        keywords = {k.arg: k.value for k in node.keywords}
        if name == "Signal":
            reason = node.args[1] if len(node.args) > 1 else keywords.get("reason")
            if reason is not None:
                yield node.lineno, reason
        elif name in ("FlagCandidate", "ReferrerFinding"):
            position = 3 if name == "FlagCandidate" else 1
            reasons = node.args[position] if len(node.args) > position else keywords.get("reasons")
            if isinstance(reasons, ast.Tuple):
                for element in reasons.elts:
                    if not isinstance(element, ast.Starred):
                        yield node.lineno, element
            elif reasons is not None:
                yield node.lineno, reasons
        elif method == "append" and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if isinstance(target, ast.Name) and target.id == "reasons":
                yield node.lineno, node.args[0]


@cache
def made_reasons() -> dict[str, set[str]]:
    """Where each reason is made ("file:line") -> the texts it can be, with sample values."""
    found: dict[str, set[str]] = {}
    for path in SOURCES:
        module = _Module.read(path)
        functions = [n for n in ast.walk(module.tree) if isinstance(n, ast.FunctionDef)]
        for function in functions:
            reader = _Reader(module, _locals(function))
            for line, expression in _reason_expressions(function):
                if ast.unparse(expression) in PASSED_ON:
                    continue
                where = f"{path.relative_to(ROOT)}:{line}"
                texts = {t for t in reader.texts(expression) if t.replace(UNKNOWN, "").strip()}
                assert texts, f"{where}: cannot read the reason {ast.unparse(expression)}"
                found.setdefault(where, set()).update(t.replace(UNKNOWN, "7") for t in texts)
    return found


def test_the_reader_finds_the_reasons_of_every_producer() -> None:
    made = made_reasons()
    texts = {t for ts in made.values() for t in ts}
    files = {where.partition(":")[0] for where in made}
    # Each producing module is read (a refactor the reader cannot follow fails here).
    assert {
        "detectors/crawlers.py",
        "detectors/headers.py",
        "detectors/review.py",
        "detectors/velocity.py",
        "detectors/flagging.py",
        "detectors/engine.py",
        "gateway/flagger.py",
        "gateway/trees.py",
    } <= files, files
    assert len(texts) >= 60, len(texts)
    assert "7 clicks from one IP within a minute" in texts
    assert "the sharer is under review for a chain of joins from few phones or networks" in texts
    assert "client hints say 7, the user agent does not" in texts
    assert any(t.startswith("part of a chain of 7 joins in 30 min") for t in texts)
    assert any(t.endswith(", sharing a browser, at clockwork intervals") for t in texts)


def test_every_reason_the_detectors_make_reads_in_chinese(app: Flask) -> None:
    made = made_reasons()
    untranslated = []
    with app.test_request_context(headers=ZH):
        for where, texts in sorted(made.items()):
            for text in sorted(texts):
                # As made, and as a click's reason under its detector's name.
                for shown in (text, f"velocity: {text}"):
                    zh = translated_reason(shown)
                    if not HAN.search(zh) or ENGLISH.search(zh):
                        untranslated.append(f"{where}: {shown!r} -> {zh!r}")
    assert not untranslated, "\n".join(untranslated)


def test_the_detectors_names_read_in_words(app: Flask) -> None:
    """A click's reason under its detector's name, a sharer's tally of detectors, and the flag
    page's detector table name every detector of the engine in words."""
    names = {detector.name for detector in Engine().detectors}
    with app.test_request_context(headers=ZH):
        for name in names:
            shown = translated_reason(f"{name}: opened from a datacenter network")
            assert HAN.search(shown.split("：")[0]), shown
        listed = ", ".join(f"{name} ×3" for name in sorted(names))
        shown = translated_reason(f"9 of 9 clicks suspicious ({listed})")
        assert not re.search("[a-z_]{4,}", shown), shown
        assert "、" in shown and ", " not in shown, shown  # Chinese list punctuation


def test_the_names_a_reason_lists_are_separated_as_in_chinese(app: Flask) -> None:
    """The accounts and sharers a finding names: "a、b、c" in Chinese, "a, b, c" as made."""
    made = (
        "3 accounts (u1, u2, u3) joined under them from their own device",
        "3 accounts (u1, u2, u3) joined under them from one phone",
        "3 accounts (u1, u2, u3) made in a row on one phone joined under them, each within "
        "9 s of its click",
        "accounts made on one phone (first used by u0) joined under 3 sharers: u1, u2, u3",
    )
    with app.test_request_context(headers=ZH):
        for reason in made:
            shown = translated_reason(reason)
            assert "u1、u2、u3" in shown and ", " not in shown, shown
    with app.test_request_context(headers=EN):
        for reason in made:
            assert translated_reason(reason) == reason


def test_every_reason_reads_as_made_in_english(app: Flask) -> None:
    """The patterns take the values back out whole: the English console shows each reason
    exactly as stored."""
    with app.test_request_context(headers=EN):
        for text in {t for ts in made_reasons().values() for t in ts}:
            assert translated_reason(text) == text
            assert translated_reason(f"network: {text}") == f"network: {text}"


def test_nested_reasons_and_unknown_ones(app: Flask) -> None:
    with app.test_request_context(headers=ZH):
        nested = translated_reason(
            "referrer_review: the sharer is under review for sharers converting each other's links"
        )
        assert nested.startswith("审核反馈：")  # the detector, in words
        assert "converting" not in nested and HAN.search(nested)
        assert translated_reason("something new") == "something new"
        assert translated_reason("model: 0.91") != "model: 0.91"
        assert "0.91" in translated_reason("model: 0.91")


def _clicks() -> Iterator[tuple[ClickInput, History]]:
    """Clicks that make the click detectors fire, each on a different branch."""
    chrome = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/125.0 Mobile Safari/537.36"
    base = ClickInput(ts=1e9, campaign_id=1, referrer_id=1, ip_hash="h", prefix="p", ua=chrome)
    yield replace(base, ua="curl/8.0"), History()
    yield replace(base, network="datacenter"), History(ip_1m=40)
    yield replace(base, network="vpn", accept_language="*"), History()
    yield (
        replace(base, headers={"sec-ch-ua-platform": '"Windows"'}),
        History(self_visitor=True),
    )
    yield (
        replace(base, accept_language="zh-CN"),
        History(referrer_review="open", referrer_review_source="tree:ring", visitor_1m=9),
    )


def test_the_engines_reasons_read_in_chinese(app: Flask) -> None:
    reasons = {r for click, history in _clicks() for r in Engine().score(click, history).reasons}
    assert len(reasons) >= 8, reasons
    with app.test_request_context(headers=ZH):
        for reason in reasons:
            zh = translated_reason(reason)
            assert HAN.search(zh) and not ENGLISH.search(zh), (reason, zh)


def test_the_flag_page_shows_reasons_in_the_readers_language(
    app: Flask, services: Services, keys: dict[str, str]
) -> None:
    """The flagger's finding (from the helpers' flag) and the tree watch's, on the flag page, in
    its table of sources, on the queue, and in what the click path now says about the sharer."""
    add_staff(services)
    risk_client = as_role(app, "risk")
    doc, flag = flagged_campaign(services)
    clicks = "8 of 8 clicks suspicious (network ×8)"
    phone = "3 accounts (a, b, c) joined under them from one phone"
    services.flags.raise_flag(
        doc["id"],
        doc["slug"],
        FlagCandidate("referrer", "farmer", 0.95, (phone,), source="tree:self"),
        2.0,
    )
    zh = risk_client.get(f"/console/flags/{flag.id}", headers=ZH).text
    assert zh.count("8 次点击中 8 次可疑（网络来源 ×8）") == 2  # the list and the sources' table
    assert zh.count("3 个账号（a、b、c）从同一部手机加入其下级") == 2  # names listed as in Chinese
    # Under review for the tree watch's finding: what later clicks on the sharer's links say.
    assert "有账号从其本人设备或同一部手机加入其下级" in zh
    assert "clicks suspicious" not in zh and "joined under them" not in zh
    queue = risk_client.get("/console/flags", headers=ZH).text
    assert "8 次点击中 8 次可疑（网络来源 ×8）" in queue and "clicks suspicious" not in queue
    en = risk_client.get(f"/console/flags/{flag.id}", headers=EN).text
    assert en.count(clicks) == 2 and en.count(phone) == 2
    assert "accounts joined under them from their own device or one phone" in en
    # Stored, and sent by the API, as made.
    stored = services.flags.get(flag.id)
    assert stored is not None and stored.reasons == [clicks, phone]
    api = app.test_client().get(f"/api/v1/flags/{flag.id}", headers={**bearer(keys["risk"]), **ZH})
    assert api.status_code == 200 and api.get_json()["reasons"] == [clicks, phone]
