"""The images of a share link (QR codes and the poster), rendered once and kept in memory.

Rendering costs 5-80 ms of CPU, so it happens off the click path (these are ordinary Flask routes)
and each image is kept in a bounded in-process LRU keyed by everything it depends on. The same
key names the image's ETag, so a conditional request is answered without rendering at all.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from PIL import Image

from gateway import logos, posters, qr
from gateway.campaigns import Campaign, CampaignService
from gateway.fonts import FontCatalog
from gateway.invites import invite_code
from gateway.links import InvalidLink, LinkCodec, ShareLink

#: Bump when the pictures change for the same inputs (layout, colours, library upgrades).
RENDER_VERSION = 1
CACHE_BYTES = 32 << 20  # a poster is 50-300 KB, a QR code 1-20 KB
#: An image never changes for its inputs, but the link it carries can be revoked or expire, and
#: its campaign end: then it is answered 410 (gateway.blueprints.media). Caches keep an image an
#: hour and then ask again; the ETag makes that a 304 without rendering.
IMAGE_CACHE = "public, max-age=3600"
CONTENT_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


class LogoUnavailable(Exception):
    """The campaign names a logo whose bytes could not be read as they are (a save is under way)."""


@dataclass(frozen=True)
class ImageJob:
    """An image to send: its cache key (which also names its ETag) and how to render it."""

    key: tuple[Hashable, ...]
    content_type: str
    render: Callable[[], bytes]

    @property
    def etag(self) -> str:
        return hashlib.sha256(repr(self.key).encode()).hexdigest()[:32]


class MediaService:
    def __init__(
        self,
        store: Any,
        codec: LinkCodec,
        campaigns: CampaignService,
        fonts: FontCatalog,
        public_url: str,
        cache_bytes: int = CACHE_BYTES,
    ) -> None:
        self._redis = store
        self._codec = codec
        self._campaigns = campaigns
        self.fonts = fonts
        self._public_url = public_url
        self._images: LRUCache[tuple[Hashable, ...], bytes] = LRUCache(cache_bytes, getsizeof=len)
        self._logos: LRUCache[str, Image.Image] = LRUCache(16)
        self._lock = threading.Lock()

    def find(self, token: str) -> tuple[ShareLink, Campaign] | None:
        """The link a token names and its campaign; None for a bad token or unknown campaign."""
        try:
            link = self._codec.decode(token)
        except InvalidLink:
            return None
        campaign = self._campaigns.get_by_id(link.campaign_id)
        return None if campaign is None else (link, campaign)

    def scan_url(self, link: ShareLink) -> str:
        return f"{self._public_url}/s/{self._codec.encode(link.as_scan())}"

    def qr(self, link: ShareLink, campaign: Campaign, kind: str, params: qr.QrParams) -> ImageJob:
        """Raises :class:`gateway.qr.BadParams` when ``params`` do not fit this code."""
        url = self.scan_url(link)
        sha = campaign.logo_sha256
        shape = qr.geometry(url, sha is not None, params)
        draw = qr.render_svg if kind == "svg" else qr.render_png

        def render() -> bytes:
            return draw(url, shape.scale, shape.margin, self._logo(campaign))

        key = ("qr", RENDER_VERSION, kind, url, shape.scale, shape.margin, sha)
        return ImageJob(key, CONTENT_TYPES[kind], render)

    def poster(self, link: ShareLink, campaign: Campaign) -> ImageJob:
        """Raises :class:`gateway.fonts.FontProblem` if the font went missing since the save."""
        spec = campaign.poster
        if spec is not None:
            title, text = spec.title, spec.text
        else:
            # The name stands in for a poster never configured, best effort: what no font can
            # draw (an emoji in "春节 🧋") is left out rather than failing the poster.
            title, text = self.fonts.drawable(campaign.name).strip(), ""
        face = self.fonts.resolve(spec.font if spec else "auto", title + text + posters.FIXED_CHARS)
        code = invite_code(link.campaign_id, link.referrer_id)
        code_url = self.code_url(code).split("://", 1)[1]
        url = self.scan_url(link)
        sha = campaign.logo_sha256

        def render() -> bytes:
            content = posters.PosterContent(
                title, text, code, code_url, url, face, self._logo(campaign)
            )
            return posters.render_poster(content)[0]

        key = ("poster", RENDER_VERSION, url, code_url, title, text, face.path, face.index, sha)
        return ImageJob(key, "image/png", render)

    def code_url(self, code: str) -> str:
        return f"{self._public_url}/c/{code}"

    def body(self, job: ImageJob) -> bytes:
        with self._lock:
            cached = self._images.get(job.key)
        if cached is not None:
            return cached
        body = job.render()  # outside the lock: two threads may render the same image once each
        with self._lock:
            self._images[job.key] = body
        return body

    def cache_info(self) -> tuple[int, int]:
        """Images held and their bytes (for /readyz-style introspection and tests)."""
        with self._lock:
            return len(self._images), int(self._images.currsize)

    def _logo(self, campaign: Campaign) -> Image.Image | None:
        sha = campaign.logo_sha256
        if sha is None:
            return None
        with self._lock:
            cached = self._logos.get(sha)
        if cached is not None:
            return cached
        data = logos.load_logo(self._redis, campaign.id, sha)
        if data is None:
            raise LogoUnavailable(campaign.slug)
        image = logos.open_logo(data)
        with self._lock:
            self._logos[sha] = image
        return image
