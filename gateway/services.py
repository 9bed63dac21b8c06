"""The services of one app, opened once per process and kept in ``app.extensions["refgate"]``."""

from __future__ import annotations

import atexit
import logging
from dataclasses import dataclass

from flask import Flask, current_app
from redis.exceptions import RedisError

from detectors.engine import Engine
from detectors.model import ModelError
from detectors.networks import default_ranges
from gateway.admission import Admission
from gateway.apikeys import ApiKeyService
from gateway.audit import AuditLog
from gateway.campaigncache import CampaignDiskCache
from gateway.campaigns import CampaignService
from gateway.challenge import ChallengeSigner
from gateway.clickpath import ClickGateway
from gateway.conversions import ConversionService
from gateway.flagger import Flagger
from gateway.flags import FlagService
from gateway.fonts import FontCatalog
from gateway.jobs import Job, Scheduler
from gateway.links import LinkCodec
from gateway.media import MediaService
from gateway.metrics import Metrics
from gateway.models import ModelRegistry
from gateway.pages import PageRenderer
from gateway.people import PeopleService
from gateway.platforms import PLATFORM_KEYS
from gateway.platformwatch import watch
from gateway.recorder import EventRecorder, Spool
from gateway.referrer_risk import ReferrerRisk
from gateway.rewards import RewardService
from gateway.settings import Settings
from gateway.sharelinks import ShareLinkService
from gateway.signals import IpHasher, SignalGatherer
from gateway.store.clickstore import ClickStore
from gateway.store.connection import Store, open_store
from gateway.store.persistence import warn_about_lazy_expiry, warn_about_persistence
from gateway.tree import TreeService
from gateway.trees import TreeWatch
from gateway.users import LoginThrottle, UserService
from gateway.webhooks import WebhookService

EXTENSION = "refgate"
log = logging.getLogger(__name__)


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
    scheduler: Scheduler
    flags: FlagService
    flagger: Flagger
    conversions: ConversionService
    rewards: RewardService
    tree: TreeService
    #: One person across every campaign (the console's people search).
    people: PeopleService
    trees: TreeWatch
    models: ModelRegistry
    #: The staff console's accounts, login throttle and audit log (gateway.console).
    users: UserService
    logins: LoginThrottle
    audit: AuditLog
    metrics: Metrics
    admission: Admission
    webhooks: WebhookService
    #: Flags and decisions fed back to the click path (gateway.referrer_risk).
    referrer_risk: ReferrerRisk
    closed: bool = False

    @classmethod
    def open(
        cls,
        settings: Settings,
        render: PageRenderer,
        *,
        run_jobs: bool = True,
        run_local_jobs: bool = True,
    ) -> Services:
        """``run_jobs``: run the periodic jobs in a thread here; else, with ``run_local_jobs``,
        only the per-process ones (a serving worker beside a ``refgate jobs`` process)."""
        store = open_store(settings)
        # On a cluster every primary is asked (README, "Durability": the same on every node).
        warn_about_persistence(store.main)
        warn_about_lazy_expiry(store.main)
        default_ranges()  # the datacenter/VPN lists: loaded now (~85 ms), not on the first click
        codec = LinkCodec(settings.secret_keys)
        campaigns = CampaignService(
            store.main,
            settings.destination_hosts,
            FontCatalog(settings.font_dirs),
            disk=CampaignDiskCache(settings.data_dir / "campaigns"),
        )
        metrics = Metrics()
        recorder = EventRecorder(
            store.record,
            Spool(settings.data_dir / "spool"),
            click_ttl=settings.attribution_days * 86400,
            retention_seconds=settings.event_retention_days * 86400,
            metrics=metrics,
        )
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
            challenges=ChallengeSigner(settings.secret_keys),
            public_url=settings.public_url,
            secure_cookies=settings.secure_cookies,
            metrics=metrics,
            rate_limit_prefix=settings.rate_limit_prefix,
            rate_limit_token=settings.rate_limit_token,
            log_clicks=settings.click_log,
        )
        flags = FlagService(store.main)
        flagger = Flagger(store.main, campaigns, flags)
        rewards = RewardService(store.main, campaigns)
        flags.raise_listeners.append(rewards.on_flag_raised)
        flags.listeners.append(rewards.on_decision)
        # What flags and decisions say about a sharer reaches the click path (click.lua reads it).
        referrer_risk = ReferrerRisk(store.main, flags)
        flags.raise_listeners.append(referrer_risk.on_flag_raised)
        flags.listeners.append(referrer_risk.on_decision)
        flagger.risk = referrer_risk
        trees = TreeWatch(store.main, campaigns, flags)
        models = ModelRegistry(store.main)
        engine = gateway.engine

        def refresh_model(now: float) -> None:
            version = models.active_version()
            current = engine.model.version if engine.model else None
            if version != current:
                engine.model = models.get(version) if version else None
                log.info("scoring with model %s", version or "(rules only)")

        webhooks = WebhookService(
            store.main,
            campaigns,
            allow_private=settings.webhook_allow_private,
            timeout=settings.webhook_timeout,
        )
        people = PeopleService(store.main, campaigns)
        scheduler = Scheduler(
            store.main,
            [
                Job(
                    "platform-watch",
                    interval=300,
                    run=lambda now: watch(store.main, campaigns, PLATFORM_KEYS, now),
                ),
                Job("flagger", interval=30, run=flagger.run),
                Job("trees", interval=30, run=trees.run),
                Job("model", interval=10, run=refresh_model, local=True),
                Job("webhooks", interval=5, run=webhooks.run),
                # An upgraded store builds its people index once, in the background; then an
                # hourly read of one key.
                Job("people-index", interval=3600, run=people.index_if_needed),
            ],
        )
        try:
            refresh_model(0.0)  # start with the active model, not ten seconds of rules only
        except (RedisError, ModelError, KeyError) as exc:
            log.warning("no model loaded at start: %s", exc)
        if run_jobs:
            scheduler.start()
        elif run_local_jobs:
            # Workers beside a `refgate jobs` process run their own per-process jobs only: the
            # model they score with follows `refgate model activate` without a restart.
            scheduler.start(local_only=True)
        return cls(
            settings=settings,
            scheduler=scheduler,
            flags=flags,
            flagger=flagger,
            conversions=ConversionService(store.main, campaigns),
            rewards=rewards,
            tree=TreeService(store.main),
            people=people,
            trees=trees,
            models=models,
            metrics=metrics,
            admission=Admission(
                settings.max_in_flight, settings.max_in_flight_other, settings.max_queue_wait
            ),
            webhooks=webhooks,
            referrer_risk=referrer_risk,
            store=store,
            codec=codec,
            campaigns=campaigns,
            links=ShareLinkService(store.main, codec, settings.public_url),
            api_keys=ApiKeyService(store.main),
            users=UserService(store.main),
            logins=LoginThrottle(store.main),
            audit=AuditLog(store.main, IpHasher(settings.ip_hash_key)),
            recorder=recorder,
            click_store=click_store,
            gateway=gateway,
            media=MediaService(store.main, codec, campaigns, campaigns.fonts, settings.public_url),
        )

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.scheduler.stop()
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
