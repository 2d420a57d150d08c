"""Model registry: metadata only (uri, checksum, metrics); artifacts live outside consensus.

Stages: ``candidate`` (on register), ``production`` (at most one version per name: promoting a
new one archives the old) and ``archived``. Past ``max_versions_per_model`` versions of one name,
the oldest non-production version is dropped.

Records are replaced, never mutated (``freeze`` shares them); production versions are indexed
per name so a promotion does not look at every version.
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
from ._index import CowDict, Frozen

CANDIDATE, PRODUCTION, ARCHIVED = "candidate", "production", "archived"
STAGES = (CANDIDATE, PRODUCTION, ARCHIVED)

FenceCheck = Callable[["Args | None"], "dict[str, Any] | None"]


class Models:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.models: dict[str, CowDict] = {}  # name -> version -> record
        self.production: dict[str, dict[str, None]] = {}  # derived: name -> production versions

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
        versions = self.models.get(name)
        if versions is None:
            versions = self.models[name] = CowDict()
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
        versions = self.models.get(name)
        record = None if versions is None else versions.get(version)
        if versions is None or record is None:
            return refuse(NOT_FOUND, f"model {name!r} version {version!r} not found")
        clock = self.core.clock
        archived = []
        current = self.production.get(name, {})
        if stage == PRODUCTION:
            for other in [v for v in current if v != version]:  # in registration order
                versions[other] = {**versions[other], "stage": ARCHIVED, "promoted_at": clock}
                archived.append(other)
                del current[other]
        changed = record["stage"] != stage
        if changed:
            record = versions[version] = {**record, "stage": stage, "promoted_at": clock}
            if stage == PRODUCTION:
                current[version] = None
            else:
                current.pop(version, None)
        if current:
            self.production[name] = current
        else:
            self.production.pop(name, None)
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

    def freeze(self) -> dict[str, Frozen]:
        return {name: versions.freeze() for name, versions in self.models.items()}

    @staticmethod
    def thaw(frozen: dict[str, Frozen], copy: Any = clone) -> dict[str, Any]:
        if copy is None:
            return dict(frozen)
        return {name: {v: copy(r) for v, r in versions.items()} for name, versions in frozen.items()}

    def restore(self, data: dict[str, Any]) -> None:
        self.models, self.production = {}, {}
        for name, versions in data.items():
            self.models[str(name)] = CowDict((str(v), clone(r)) for v, r in versions.items())
            for v, r in versions.items():
                if r["stage"] == PRODUCTION:
                    self.production.setdefault(str(name), {})[str(v)] = None

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
