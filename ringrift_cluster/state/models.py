"""Model registry: metadata only (uri, checksum, metrics); artifacts live outside consensus.

Stages: ``candidate`` (on register), ``production`` (at most one version per name: promoting a
new one archives the old) and ``archived``. Past ``max_versions_per_model`` versions of one name,
the oldest non-production version is dropped.
"""

from __future__ import annotations

from typing import Any, Callable

from ._common import (
    ALREADY_EXISTS,
    MAX_LONG_TEXT,
    NOT_FOUND,
    Args,
    Core,
    clone,
    ok,
    refuse,
)

CANDIDATE, PRODUCTION, ARCHIVED = "candidate", "production", "archived"
STAGES = (CANDIDATE, PRODUCTION, ARCHIVED)

FenceCheck = Callable[["Args | None"], "dict[str, Any] | None"]


class Models:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.models: dict[str, dict[str, dict[str, Any]]] = {}  # name -> version -> record

    # -- commands ---------------------------------------------------------------------------

    def register(self, a: Args, check_fence: FenceCheck) -> dict[str, Any]:
        name = a.text("name")
        version = a.text("version")
        uri = a.text("uri", max_len=MAX_LONG_TEXT)
        checksum = a.text("checksum")
        metrics = a.mapping("metrics", {})
        fence = a.sub("fence")
        refusal = check_fence(fence)
        a.done()
        if refusal is not None:
            return refusal
        versions = self.models.setdefault(name, {})
        existing = versions.get(version)
        if existing is not None:
            content = (existing["uri"], existing["checksum"], existing["metrics"])
            if content == (uri, checksum, metrics):
                return ok(model=clone(existing), created=False)
            return refuse(ALREADY_EXISTS,
                          f"model {name!r} version {version!r} is registered with other content")
        record = {
            "name": name,
            "version": version,
            "uri": uri,
            "checksum": checksum,
            "metrics": metrics,
            "seq": self.core.next("model"),
            "stage": CANDIDATE,
            "registered_at": self.core.clock,
            "promoted_at": None,
        }
        versions[version] = record
        self._bound(versions, keep=version)
        return ok(model=clone(record), created=True)

    def promote(self, a: Args, check_fence: FenceCheck) -> dict[str, Any]:
        name = a.text("name")
        version = a.text("version")
        stage = a.choice("stage", STAGES)
        fence = a.sub("fence")
        refusal = check_fence(fence)
        a.done()
        if refusal is not None:
            return refusal
        versions = self.models.get(name, {})
        record = versions.get(version)
        if record is None:
            return refuse(NOT_FOUND, f"model {name!r} version {version!r} not found")
        archived = []
        if stage == PRODUCTION:
            for other in versions.values():
                if other["stage"] == PRODUCTION and other is not record:
                    other.update(stage=ARCHIVED, promoted_at=self.core.clock)
                    archived.append(other["version"])
        changed = record["stage"] != stage
        if changed:
            record.update(stage=stage, promoted_at=self.core.clock)
        return ok(model=clone(record), changed=changed, archived=archived)

    # -- reads ------------------------------------------------------------------------------

    def get(self, name: str, version: str) -> dict[str, Any] | None:
        record = self.models.get(name, {}).get(version)
        return clone(record) if record is not None else None

    def list_models(self, name: str | None = None,
                    stage: str | None = None) -> list[dict[str, Any]]:
        """Records in registration order, optionally of one name and/or one stage."""
        names = [name] if name is not None else list(self.models)
        out = []
        for n in names:
            for record in list(self.models.get(n, {}).values()):
                if stage is None or record["stage"] == stage:
                    out.append(clone(record))
        out.sort(key=lambda r: r["seq"])
        return out

    def latest(self, name: str, stage: str | None = None) -> dict[str, Any] | None:
        """The most recently registered version of ``name`` (in ``stage`` when given)."""
        records = self.list_models(name, stage)
        return records[-1] if records else None

    # -- snapshot ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return clone(self.models)

    def restore(self, data: dict[str, Any]) -> None:
        self.models = clone(data)

    # -- helpers ----------------------------------------------------------------------------

    def _bound(self, versions: dict[str, dict[str, Any]], keep: str) -> None:
        limit = self.core.limits.max_versions_per_model
        while len(versions) > limit:
            # Versions are in registration order; production and the newcomer are never dropped.
            oldest = next((v for v, r in versions.items()
                           if r["stage"] != PRODUCTION and v != keep), None)
            if oldest is None:
                return
            del versions[oldest]
