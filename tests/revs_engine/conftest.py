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


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one torch thread (tiny models: thread hand-offs cost more than they save, 20x slower
    on a loaded 2-core machine); the thread count is restored after the module."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
