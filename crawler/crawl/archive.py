"""The crawl's WARC files (``output.warc``): every fetch as it was received.

Each response the crawl gets is archived with the request that asked for it. In a
crawl in rounds, an unchanged page is archived as a ``revisit`` of its last full
response, whose reference its page state keeps. The writer is one more file of
the commit protocol: committed with the items, cut back to the commit on resume.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from crawler.config import Config
from crawler.crawl.checkpoint import Checkpoint, warc_file_key
from crawler.crawl.files import CrawlFiles
from crawler.crawl.outcome import Outcome
from crawler.models import AsyncResource
from crawler.sinks import WarcFetch, WarcRef, WarcWriter, payload_digest, split_warc_name

__all__ = ["Archive"]


class Archive(AsyncResource):
    def __init__(self, config: Config, files: CrawlFiles, checkpoint: Checkpoint) -> None:
        stem, suffix = split_warc_name(config.output.warc)
        position = (checkpoint.warc_file(files.worker), files.offset(checkpoint, "warc"))
        self._files = files
        self._writer = WarcWriter(
            files.out, stem=stem, suffix=suffix, worker=files.worker,
            max_bytes=config.output.warc_max_bytes, position=position,
            description=f"crawl of {', '.join(config.crawl.start_urls)}",
        )  # fmt: skip

    async def open(self) -> None:
        await self._writer.open()

    async def aclose(self) -> None:
        await self._writer.aclose()

    async def record(self, outcome: Outcome) -> None:
        """Archive the outcome's response; a new full response becomes the page's
        reference for the revisits of later rounds."""
        response = outcome.response
        if response is None:
            return
        sent = response.request
        fetch = WarcFetch(
            url=response.url, status=response.status, reason=response.reason,
            fetched_at=datetime.fromtimestamp(outcome.fetched_at, UTC), body=response.body,
            method=sent.method, request_headers=list(sent.headers.items()),
            response_headers=list(response.headers.items()),
        )  # fmt: skip
        known = outcome.known
        original = _ref(known.archived) if known is not None else None
        if (
            outcome.change == "unchanged"
            and original is not None
            and (response.status == 304 or payload_digest(response.body) == original.payload_digest)
        ):
            await self._writer.write_revisit(fetch, original)
            return
        ref = await self._writer.write_response(fetch)
        # Only a full answer is what later revisits refer to: a 304 (archived before
        # the page had a reference) has no body to stand for.
        if outcome.page is not None and response.status != 304:
            state = dataclasses.replace(outcome.page.state, archived=_text(ref))
            outcome.page = dataclasses.replace(outcome.page, state=state)

    async def commit(self) -> dict[str, int]:
        """Make the records durable; the checkpoint values that say how far."""
        index, length = await self._writer.commit()
        worker = self._files.worker
        return {warc_file_key(worker): index, self._files.offset_key("warc"): length}


def _text(ref: WarcRef) -> str:
    return json.dumps([ref.record_id, ref.date, ref.target_uri, ref.payload_digest])


def _ref(text: str | None) -> WarcRef | None:
    return WarcRef(*json.loads(text)) if text else None
