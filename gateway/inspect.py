"""How refgate classifies a request, for staff: platform, browser, bot, network, signals.

The same code as the click path (platform detection, network lists, the stateless detectors);
history-based detectors need a real click and are not run here.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from detectors.base import ClickInput, History
from detectors.engine import Engine
from detectors.networks import network_class
from gateway.platforms import detect
from gateway.signals import HINT_HEADERS, network_prefix

#: Detectors that read only the request (the rest need the store's history of a real click).
STATELESS = frozenset({"crawler", "network", "headers"})


class InspectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    ua: Annotated[str, Field(max_length=2000)] = ""
    ip: Annotated[str, Field(max_length=64)] = ""
    #: Request headers (any case), e.g. {"Accept-Language": "zh-CN"}.
    headers: dict[str, Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=dict, max_length=50
    )

    @field_validator("ip")
    @classmethod
    def _address(cls, ip: str) -> str:
        # A typo would otherwise be classified as "no address given", silently.
        if ip:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise ValueError("must be an IPv4 or IPv6 address") from None
        return ip


def inspect_request(request: InspectRequest, engine: Engine) -> dict[str, Any]:
    client = detect(request.ua)
    headers = {name.lower(): value for name, value in request.headers.items()}
    network = network_class(request.ip) if request.ip else ""
    click = ClickInput(
        ts=0.0,
        campaign_id=0,
        referrer_id=0,
        ip_hash="",
        prefix=network_prefix(request.ip) if request.ip else "",
        ua=request.ua,
        accept_language=headers.get("accept-language", ""),
        referer=headers.get("referer", ""),
        network=network,
        headers={name: headers[name] for name in HINT_HEADERS if name in headers},
        platform=client.platform.key,
        in_app=client.platform.in_app,
        os=client.os,
    )
    history = History(available=False)
    signals = []
    for detector in engine.detectors:
        if detector.name in STATELESS:
            signal = detector.score(click, history)
            if signal.value > 0:
                signals.append(
                    {
                        "detector": detector.name,
                        "value": signal.value,
                        "reason": signal.reason,
                        "kind": signal.kind,
                    }
                )
    return {
        "platform": {
            "key": client.platform.key,
            "name": client.platform.name,
            "in_app": client.platform.in_app,
            "default_strategy": client.platform.strategy.value,
        },
        "os": client.os,
        "mobile": client.mobile,
        "browser_family": client.browser_family,
        "bot": client.bot,
        "network": {"class": network, "prefix": click.prefix},
        "signals": signals,
    }
