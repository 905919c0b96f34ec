"""The PDF renderer: a process pool, so WeasyPrint's CPU-bound work never blocks the service's eventlet hub.

Why a process pool waited on from green threads (not ``tpool``): under eventlet's monkey patching the
executor's management thread is a green thread and ``Future.result()`` waits on a green condition, so a
request waiting for its PDF yields to the hub like any other I/O. Calling ``result()`` from a tpool OS thread
instead deadlocks on that green condition (measured). The workers are started with 'spawn': a forked copy of
an eventlet process (hub, sockets, AMQP connections) is unsafe.
"""
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import eventlet
from nameko.extensions import DependencyProvider

from servicekit import config as cfg
from servicekit.errors import AppError

from certs import domain, fonts, render

log = logging.getLogger(__name__)


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "sitax-certs")


class Renderer:
    """What a worker sees: ``render(doc) -> bytes``."""

    def __init__(self, provider):
        self.provider = provider

    def render(self, doc: dict) -> bytes:
        return self.provider.render(doc)


class PdfRenderer(DependencyProvider):
    def setup(self):
        config = self.container.config
        self.workers = max(1, cfg.integer(config, "CERT_RENDER_WORKERS", 2))
        self.timeout = cfg.integer(config, "CERT_RENDER_TIMEOUT_SECONDS", 60)
        # Made once per process and cached on disk: the first start pays ~5 s, later starts nothing.
        self.font = fonts.prepare_font(cfg.setting(config, "CERT_CACHE_DIR", default_cache_dir()),
                                       family=cfg.setting(config, "CERT_FONT_FAMILY", fonts.DEFAULT_FAMILY),
                                       use_subset=cfg.flag(config, "CERT_FONT_SUBSET", True))
        self.pool = None

    def start(self):
        self.pool = self._new_pool()
        # Warm every worker (WeasyPrint import, font load) so the first payer does not wait for it.
        eventlet.spawn_n(self._warm_up)

    def _new_pool(self):
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=render.init_worker,
                                   initargs=(self.font.css(), self.font.family_list))

    def _warm_up(self):
        try:
            futures = [self.pool.submit(render.warm_up) for _ in range(self.workers)]
            for future in futures:
                future.result(self.timeout * 2)
        except Exception as exc:  # a cold pool still works, just slower for the first request
            log.warning("renderer warm-up failed: %s", type(exc).__name__)

    def render(self, doc: dict) -> bytes:
        for attempt in (1, 2):
            pool = self.pool
            try:
                return pool.submit(render.render_pdf, doc).result(self.timeout)
            except BrokenProcessPool:
                # A worker died (OOM killer, segfault in a C library): start a fresh pool once and retry.
                log.error("PDF worker pool broken; restarting it (attempt %d)", attempt)
                if self.pool is pool:
                    self.pool = self._new_pool()
                    pool.shutdown(wait=False, cancel_futures=True)
            except FutureTimeout:
                log.error("PDF rendering exceeded %s s", self.timeout)
                break
        raise AppError("SERVICE_UNAVAILABLE", "证明生成失败，请稍后再试")

    def stop(self):
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return Renderer(self)


def issuer_settings(config) -> domain.IssuerSettings:
    return domain.IssuerSettings(
        public_base_url=cfg.setting(config, "PUBLIC_BASE_URL", "http://127.0.0.1:8000"),
        default_authority=cfg.setting(config, "CERT_TAX_AUTHORITY", "国家税务总局黑龙江省税务局"),
        authorities=domain.parse_authorities(cfg.setting(config, "CERT_TAX_AUTHORITIES", "")),
        tax_shows_full_id=cfg.flag(config, "CERT_TAX_SHOWS_FULL_ID", True),
    )
