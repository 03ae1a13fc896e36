"""Fixtures for revs_engine tests: one tiny model per architecture family."""

import pytest

from revs_engine.arch import ARCH_SPECS, resolve_arch
from tests.revs_engine.tiny import tiny_model

FAMILIES = sorted(ARCH_SPECS)


@pytest.fixture(params=FAMILIES)
def tiny(request):
    """``(model, arch)`` for each family in the architecture table."""
    model = tiny_model(request.param)
    return model, resolve_arch(model)
