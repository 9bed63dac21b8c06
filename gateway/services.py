"""The services of one app, opened once per process and kept in ``app.extensions["refgate"]``."""

from __future__ import annotations

import atexit
from dataclasses import dataclass

from flask import Flask, current_app

from detectors.engine import Engine
from gateway.apikeys import ApiKeyService
from gateway.campaigns import CampaignService
from gateway.clickpath import ClickGateway, PageRenderer
from gateway.fonts import FontCatalog
from gateway.links import LinkCodec
from gateway.media import MediaService
from gateway.recorder import EventRecorder, Spool
from gateway.settings import Settings
from gateway.sharelinks import ShareLinkService
from gateway.signals import IpHasher, SignalGatherer
from gateway.store.clickstore import ClickStore
from gateway.store.connection import Store, open_store

EXTENSION = "refgate"


@dataclass
class Services:
    settings: Settings
    store: Store
    codec: LinkCodec
    campaigns: CampaignService
    links: ShareLinkService
    api_keys: ApiKeyService
    recorder: EventRecorder
    click_store: ClickStore
    gateway: ClickGateway
    media: MediaService
    closed: bool = False

    @classmethod
    def open(cls, settings: Settings, render: PageRenderer) -> Services:
        store = open_store(settings)
        codec = LinkCodec(settings.secret_keys)
        campaigns = CampaignService(
            store.main, settings.destination_hosts, FontCatalog(settings.font_dirs)
        )
        recorder = EventRecorder(store.main, Spool(settings.data_dir / "spool"))
        click_store = ClickStore(
            store.url,
            timeout=settings.store_timeout,
            cluster_client=store.fast if store.is_cluster else None,
        )
        gateway = ClickGateway(
            codec=codec,
            campaigns=campaigns,
            gatherer=SignalGatherer(IpHasher(settings.ip_hash_key)),
            engine=Engine(),
            recorder=recorder,
            store=store.fast,
            click_store=click_store,
            render=render,
            secure_cookies=settings.secure_cookies,
        )
        return cls(
            settings=settings,
            store=store,
            codec=codec,
            campaigns=campaigns,
            links=ShareLinkService(store.main, codec, settings.public_url),
            api_keys=ApiKeyService(store.main),
            recorder=recorder,
            click_store=click_store,
            gateway=gateway,
            media=MediaService(store.main, codec, campaigns, campaigns.fonts, settings.public_url),
        )

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.recorder.close()
        self.click_store.close()
        self.store.close()
        if self.store.embedded is not None:
            self.store.embedded.stop()

    def install(self, app: Flask) -> None:
        app.extensions[EXTENSION] = self
        # Flask has no app-shutdown hook; flush pending events when the process exits.
        atexit.register(self.close)


def services() -> Services:
    found: Services = current_app.extensions[EXTENSION]
    return found
