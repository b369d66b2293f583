"""The gateway's cached view of the provisioner's registry: few reads, fresh when it matters."""

from __future__ import annotations

from tollgate.adapters.dynamodb import CachedProfileDirectory, ProfileEntry
from tollgate.ports import Provisioned


class FakeRegistry:
    def __init__(self) -> None:
        self.models = {"acme-chat": "model-a"}
        self.reads = 0

    def entries(self, *, consistent: bool = True) -> dict[str, ProfileEntry]:
        self.reads += 1
        return {
            name: ProfileEntry(name, f"arn:{name}:{model}", "acme", model, "global", f"arn:source:{model}")
            for name, model in self.models.items()
        }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def directory(registry: FakeRegistry, clock: Clock) -> CachedProfileDirectory:
    return CachedProfileDirectory(registry, ttl_seconds=300, miss_refresh_seconds=10, monotonic=clock)  # type: ignore[arg-type]


def test_one_read_per_container_until_the_ttl() -> None:
    registry, clock = FakeRegistry(), Clock()
    profiles = directory(registry, clock)
    for _ in range(50):
        assert profiles.lookup("acme-chat") == Provisioned("arn:acme-chat:model-a", "model-a", "global")
        clock.now += 1
    assert registry.reads == 1
    clock.now += 300
    registry.models["acme-chat"] = "model-b"
    assert profiles.lookup("acme-chat") == Provisioned("arn:acme-chat:model-b", "model-b", "global")
    assert registry.reads == 2


def test_refresh_and_misses_read_again_at_most_every_few_seconds() -> None:
    registry, clock = FakeRegistry(), Clock()
    profiles = directory(registry, clock)
    profiles.lookup("acme-chat")
    registry.models["acme-chat"] = "model-b"
    registry.models["acme-new"] = "model-c"
    assert profiles.lookup("acme-chat", refresh=True).model_id == "model-a"  # type: ignore[union-attr]
    assert profiles.lookup("acme-new") is None  # too soon after the last read: no storm of reads
    assert registry.reads == 1
    clock.now += 10
    assert profiles.lookup("acme-chat", refresh=True).model_id == "model-b"  # type: ignore[union-attr]
    assert profiles.lookup("acme-new") is not None
    assert registry.reads == 2
