"""``--device`` / ``--dtype`` on every command that loads a model, the flows' device/dtype parameters, and the
model cache keyed by them (``--device cpu`` explicit everywhere; the GPU path is the ``gpu``-marked test in
tests/revs_engine/test_real_dtype.py)."""

import os

import pytest
import torch

from flows.cli import build_parser, main
from tasks import _models
from tests.flows.test_cli_probe import workspace  # noqa: F401 - the module-scoped fixture

MODEL_COMMANDS = ("probe", "unlearn", "audit", "sweep", "forget", "demo")


@pytest.fixture(autouse=True)
def _runtime_env(monkeypatch):
    """Each test starts without REVS_DEVICE / REVS_DTYPE and leaves none behind (commands set them)."""
    monkeypatch.delenv("REVS_DEVICE", raising=False)
    monkeypatch.delenv("REVS_DTYPE", raising=False)
    _models.clear()
    yield
    _models.clear()


def _subparser(name):
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices[name]


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_every_command_that_loads_a_model_takes_device_and_dtype(command):
    help_text = _subparser(command).format_help()
    assert "--device" in help_text
    assert "--dtype" in help_text
    options = {o for a in _subparser(command)._actions for o in a.option_strings}
    assert {"--device", "--dtype"} <= options


def test_probe_on_an_explicit_cpu_in_bf16_loads_the_model_there(workspace, monkeypatch):  # noqa: F811
    tmp_path, p = workspace
    seen = []
    real = _models.load_model

    def spy(*args, **kwargs):
        loaded = real(*args, **kwargs)
        seen.append((kwargs, loaded.dtype, loaded.device))
        return loaded

    monkeypatch.setattr(_models, "load_model", spy)
    out = tmp_path / "probes-bf16.parquet"
    code = main(["probe", "--model", str(p["model"]), "--findings", str(p["all"]), "--out", str(out),
                 "--device", "cpu", "--dtype", "bf16"])
    assert code == 0
    assert out.is_file()
    assert seen == [({"cache_dir": seen[0][0]["cache_dir"], "device": "cpu", "dtype": "bf16"}, torch.bfloat16,
                     torch.device("cpu"))]


def test_audit_on_an_explicit_cpu_in_fp32(workspace, capsys):  # noqa: F811
    tmp_path, p = workspace
    out = tmp_path / "audit-cpu.parquet"
    code = main(["audit", "--model", str(p["model"]), "--forget", str(p["forget"]), "--retain", str(p["retain"]),
                 "--out", str(out), "--k", "5", "--samples", "0", "--device", "cpu", "--dtype", "fp32"])
    assert code == 0
    assert os.environ["REVS_DEVICE"] == "cpu"
    assert os.environ["REVS_DTYPE"] == "fp32"
    assert "targets audited" in capsys.readouterr().out


def test_unlearn_in_bf16_saves_a_bf16_version_whose_patch_reverts_it_bit_exactly(workspace):  # noqa: F811
    from revs_engine.arch import resolve_arch
    from revs_engine.hashing import weights_sha256
    from revs_engine.loading import load_model
    from revs_engine.patch import load_patch, revert_patch

    # given the probes of a tiny model that memorized two findings
    tmp_path, p = workspace
    probes = tmp_path / "probes-for-bf16.parquet"
    assert main(["probe", "--model", str(p["model"]), "--findings", str(p["all"]), "--out", str(probes),
                 "--device", "cpu"]) == 0
    # when they are erased from it in bf16
    out = tmp_path / "v2-bf16"
    code = main(["unlearn", "--model", str(p["model"]), "--probes", str(probes), "--findings", str(p["all"]),
                 "--out", str(out), "--no-progress", "--device", "cpu", "--dtype", "bf16"])
    assert code in (0, 3)
    # then the new version is bf16 (dtype auto reads what was saved), its patch too, and the patch reverts it to
    # the base in bf16 bit for bit
    edited = load_model(out, cache_dir=tmp_path / "cache")
    assert edited.dtype == torch.bfloat16
    patch, manifest = load_patch(out / "patch")
    assert patch.n_neurons() > 0
    assert {t.dtype for t in patch.edited.values()} == {torch.bfloat16}
    assert edited.weights_sha256 == manifest.edited_weights_sha256
    base = load_model(p["model"], cache_dir=tmp_path / "cache", dtype="bf16")
    assert base.weights_sha256 == manifest.base_weights_sha256 != manifest.edited_weights_sha256
    revert_patch(edited.model, resolve_arch(edited.model), patch, expect_base=manifest.base_weights_sha256)
    assert weights_sha256(edited.model) == base.weights_sha256


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--device", "tpu", "unknown device 'tpu': use auto, cpu, cuda or cuda:N"),
    ("--dtype", "int8", "unknown dtype 'int8': use auto"),
    ("--device", "cuda:7", "CUDA device"),
])
def test_a_bad_device_or_dtype_is_a_one_line_error(workspace, capsys, flag, value, message):  # noqa: F811
    if value.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    tmp_path, p = workspace
    code = main(["probe", "--model", str(p["model"]), "--findings", str(p["all"]),
                 "--out", str(tmp_path / "never.parquet"), flag, value])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "never.parquet").exists()


def test_sweep_and_forget_pass_device_and_dtype_to_their_flows(world, monkeypatch, capsys):
    import flows.deletion
    import flows.sweep

    calls = {}

    def fake(kind):
        def flow(*args, **kwargs):
            calls[kind] = (kwargs, dict(os.environ))
            return {"run_id": "r", "version": None, "passed": True, "report": "report.html", "warnings": []}
        return flow

    monkeypatch.setattr(flows.sweep, "compliance_sweep", fake("sweep"))
    monkeypatch.setattr(flows.deletion, "deletion_request", fake("forget"))
    assert main(["sweep", "--corpus", str(world.corpus), "--model", str(world.model), "--device", "cpu",
                 "--dtype", "fp32"]) == 0
    assert main(["forget", str(world.jane_request), "--model", str(world.model), "--corpus", str(world.corpus),
                 "--device", "cpu", "--dtype", "bf16"]) == 0
    for kind, dtype in (("sweep", "fp32"), ("forget", "bf16")):
        kwargs, env = calls[kind]
        assert (kwargs["device"], kwargs["dtype"]) == ("cpu", dtype)
        assert (env["REVS_DEVICE"], env["REVS_DTYPE"]) == ("cpu", dtype)


def test_the_demo_runs_its_flows_with_the_runtime(monkeypatch, capsys):
    import flows.demo
    from flows.steps import AuditFailedError

    seen = {}

    def fake_demo(root, name):
        seen.update(device=os.environ.get("REVS_DEVICE"), dtype=os.environ.get("REVS_DTYPE"))
        raise AuditFailedError("stopped by the test", {})

    monkeypatch.setattr(flows.demo, "run_demo", fake_demo)
    assert main(["demo", "--device", "cpu", "--dtype", "fp32"]) == 3
    assert seen == {"device": "cpu", "dtype": "fp32"}


def test_the_model_cache_is_keyed_by_device_and_dtype(workspace, monkeypatch):  # noqa: F811
    _, p = workspace
    _models.set_model_runtime("cpu", "fp32")
    a = _models.load_cached(p["model"])
    assert _models.load_cached(p["model"]) is a
    _models.set_model_runtime(dtype="bf16")
    b = _models.load_cached(p["model"])
    assert b is not a
    assert (a.dtype, b.dtype) == (torch.float32, torch.bfloat16)
    assert _models.model_runtime() == {"device": "cpu", "dtype": "bf16"}


def test_flow_parameters_check_device_and_dtype_names():
    from flows.params import DeletionRequestParams, SweepParams

    assert SweepParams(corpus="c", model="m", device="CUDA:1", dtype="BF16").device == "cuda:1"
    assert SweepParams(corpus="c", model="m").device is None
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        SweepParams(corpus="c", model="m", device="tpu")
    with pytest.raises(ValueError, match="unknown dtype 'int8'"):
        DeletionRequestParams(request="r", model="m", corpus="c", dtype="int8")
