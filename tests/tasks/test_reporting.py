"""Report building, HTML rendering (incl. headless Chromium), export with manifest + signature, verification."""

import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tasks.report_html import attack_bars_svg, rank_plot_svg, render_html
from tasks.reporting import ReportDataError, build_report, export_report, export_run, verify_report
from tasks.requests import SENSITIVE
from tests.tasks.conftest import PLANTED_EMAIL, PLANTED_SSN

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_build_report_has_all_blocks_and_a_residual_risk_statement(report_data):
    report = build_report(report_data)
    for key in ("request", "lineage", "config", "versions", "metrics", "thresholds", "verdict", "residual_risk"):
        assert report[key], key
    assert report["metrics"]["after"]["efficacy@100"] == 98.5
    assert "not a proof" in report["residual_risk"]
    assert "versions still containing the erased data: 1" in report["residual_risk"]


def test_failed_or_missing_verdict_is_stated(report_data):
    failed = build_report({**report_data, "verdict": {"passed": False, "failures": ["specificity: 80 < 90"]}})
    assert "FAILED" in failed["residual_risk"]
    bare = build_report({"run_id": "r", "model": {"name": "m"}})
    assert bare["verdict"]["passed"] is False
    assert "unverified" in bare["residual_risk"]


@pytest.mark.parametrize(("mutate", "match"), [
    (lambda d: d.pop("run_id"), "run_id: required"),
    (lambda d: d.update(lineage="v1"), "lineage: must be a list"),
    (lambda d: d["targets"][0].update(value="x"), r"report.targets\[0\].value: raw-text fields"),
    (lambda d: d["request"]["subject"].update(name="Jane"), "report.request.subject.name: raw-text"),
    (lambda d: d["metrics"].update(before={"x": object()}), "is not JSON data"),
])
def test_malformed_or_leaky_data_is_refused(report_data, mutate, match):
    mutate(report_data)
    with pytest.raises(ReportDataError, match=match):
        build_report(report_data)


def test_registered_raw_value_is_refused_anywhere(report_data):
    SENSITIVE.register([PLANTED_EMAIL])
    try:
        report_data["config"]["note"] = f"subject {PLANTED_EMAIL.upper()}"
        with pytest.raises(ReportDataError, match=r"report.config.note: contains a raw personal value") as exc:
            build_report(report_data)
        assert PLANTED_EMAIL not in str(exc.value)
    finally:
        SENSITIVE.clear()


def test_html_is_self_contained_and_escaped(report_data):
    report_data["model"]["name"] = "<script>alert(1)</script>"
    html = render_html(build_report(report_data))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert not re.search(r"""(src|href)\s*=|url\(|@import|<link|<img|<iframe""", html, re.IGNORECASE)
    assert html.count("<svg") == 2
    assert "polyline" in html
    assert "stroke-dasharray" in html


def test_plots_handle_empty_and_partial_data():
    assert "No per-layer rank data" in rank_plot_svg([], [])
    assert "No attack scores" in attack_bars_svg([{"name": "x", "score": None}])
    svg = rank_plot_svg([5, None, 0], [7])
    assert svg.count("<circle") == 3


def test_export_and_verify_roundtrip(tmp_path, report_data, run_dir):
    out = export_run(run_dir, tmp_path / "export")
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == ["evidence/findings.parquet", "evidence/patch/manifest.json", "manifest.json", "report.html",
                     "report.json", "signature"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert {f["path"] for f in manifest["files"]} == set(names) - {"manifest.json", "signature"}
    report = json.loads((out / "report.json").read_text())
    assert [e["name"] for e in report["evidence"]] == ["evidence/findings.parquet", "evidence/patch/manifest.json"]
    result = verify_report(out)
    assert result.ok, result.problems


def test_export_refuses_non_empty_dir_and_bad_formats(tmp_path, report_data):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "stale").write_text("s")
    with pytest.raises(FileExistsError):
        export_report(build_report(report_data), tmp_path / "x")
    with pytest.raises(ValueError, match="formats"):
        export_report(build_report(report_data), tmp_path / "y", ["pdf"])


@pytest.mark.parametrize("victim", ["report.json", "report.html", "evidence/findings.parquet",
                                    "evidence/patch/manifest.json", "manifest.json", "signature"])
def test_one_changed_byte_in_any_file_fails_verification(tmp_path, run_dir, victim):
    out = export_run(run_dir, tmp_path / "export")
    path = out / victim
    data = bytearray(path.read_bytes())
    i = len(data) // 2
    data[i] = (data[i] + 1) % 256 if data[i] not in b"\n " else ord("x")
    path.write_bytes(bytes(data))
    result = verify_report(out)
    assert not result.ok
    assert result.problems


def test_added_removed_or_appended_files_fail_verification(tmp_path, run_dir):
    out = export_run(run_dir, tmp_path / "export")
    (out / "evidence" / "extra.txt").write_text("sneaked in")
    assert verify_report(out).problems == ["evidence/extra.txt: not listed in the manifest (added after export)"]
    (out / "evidence" / "extra.txt").unlink()
    (out / "report.html").unlink()
    assert verify_report(out).problems == ["report.html: listed in the manifest but missing"]
    shutil.rmtree(out)
    out = export_run(run_dir, tmp_path / "export")
    with open(out / "report.json", "ab") as fh:
        fh.write(b" ")
    assert verify_report(out).problems == ["report.json: content changed (sha256 does not match the manifest)"]
    (out / "signature").unlink()
    assert verify_report(out).problems == ["signature: missing"]


def test_planted_values_never_reach_any_written_file(tmp_path, run_dir):
    SENSITIVE.register([PLANTED_EMAIL, PLANTED_SSN])
    try:
        out = export_run(run_dir, tmp_path / "export")
        blob = b"".join(p.read_bytes() for p in (tmp_path).rglob("*") if p.is_file())
        for raw in (PLANTED_EMAIL, PLANTED_SSN, "219099999"):
            assert raw.encode() not in blob
        assert verify_report(out).ok
    finally:
        SENSITIVE.clear()


def _png_pixels(path: Path):
    """Decode an 8-bit RGB/RGBA non-interlaced PNG into rows of pixel tuples (tiny reader, no Pillow)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert (depth, interlace) == (8, 0), header
    assert color in (2, 6), header
    bpp = 3 if color == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) % 256
            elif ftype == 2:
                line[x] = (line[x] + b) % 256
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) % 256
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) % 256
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, bpp)])
        prev = line
    return rows


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium) — "
                                             "the headless rendering check needs it")
def test_html_renders_in_headless_chromium(tmp_path, report_data):
    page = tmp_path / "report.html"
    page.write_text(render_html(build_report(report_data)))
    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
           "--window-size=1200,1600", page.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.exists(), "chromium produced no screenshot"
    pixels = [p for row in _png_pixels(shot)[::4] for p in row[::4]]
    colors = set(pixels)
    non_white = sum(1 for p in pixels if p != (255, 255, 255))
    assert len(colors) > 20
    assert non_white > len(pixels) // 100
    # the plots' before/after and pass/fail colours are on the page
    assert {(31, 119, 180), (214, 39, 40), (44, 160, 44)} <= colors
