"""The stand-in base images' recipes: what makes a base rebuild, and what must not."""

from __future__ import annotations

from pathlib import Path

import pytest

from coffee_rt.cluster import images


def _base(hook: str) -> images.Base:
    return images.Base("example/image:1", ("ca-certificates",), hooks=lambda: [hook])


def test_a_base_hash_does_not_depend_on_where_the_checkout_is(monkeypatch: pytest.MonkeyPatch) -> None:
    first = _base(f"copy-in {images.REPO_ROOT}/tools/images/kafka/bin /opt/kafka").recipe_hash()
    monkeypatch.setattr(images, "REPO_ROOT", Path("/elsewhere/clone"))
    assert _base("copy-in /elsewhere/clone/tools/images/kafka/bin /opt/kafka").recipe_hash() == first


def test_a_changed_hook_is_a_new_base() -> None:
    assert _base("chmod 0755 /x").recipe_hash() != _base("chmod 0700 /x").recipe_hash()


def test_every_stand_in_names_a_base_and_the_public_image_it_replaces() -> None:
    assert set(images.STANDINS) == {"kafka", "postgres", "redis", "postgres_exporter", "redis_exporter"}
    for name in images.STANDINS.values():
        assert ":" in images.BASES[name].stands_for
