"""The v2 report in headless Chromium: the page renders, the PDF's first page alone states the verdict and every
check (threshold and pass/fail, read back from the PDF's text), the PDF is signed with the rest, tampering is
caught.

Skipped, with the reason, where Chromium is not installed (`make test` installs it with apt-get when it can).
"""

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks import pdf
from tasks.report_html import render_html
from tasks.reporting import build_report, export_run, load_run, verify_report

CHROMIUM = next((shutil.which(n) for n in pdf.CANDIDATES if shutil.which(n)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y "
                                                             "chromium; `make test` does it when it can)")


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


def _page_texts(path: Path) -> list[str]:
    pypdf = pytest.importorskip("pypdf", reason="pypdf (dev extra) reads the PDF's text")
    return [" ".join(page.extract_text().split()) for page in pypdf.PdfReader(path).pages]


def _threshold(check) -> str:
    sign = {">=": "≥", "<=": "≤"}[check["comparison"]]
    unit = f" {check['unit'].strip()}" if check["unit"].strip() else ""
    return f"{sign} {check['threshold']:g}{unit}"


def _assert_page_states_every_check(text: str, checks) -> None:
    assert "Audit checks (" in text
    text = text[text.index("Audit checks ("):]
    for check in checks:
        label = " ".join(check["label"].split())
        assert label in text, f"check {check['name']!r} missing from page 1"
        row = text[text.index(label):][:600]
        result = "PASS" if check["passed"] else "FAIL"
        assert re.search(re.escape(_threshold(check)) + r"\s+" + result, row), (check["name"], row)


@needs_chromium
def test_v2_report_renders_in_headless_chromium(tmp_path, run_dir):
    page = tmp_path / "report.html"
    page.write_text(render_html(build_report(*load_run(run_dir))))
    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, *pdf.FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
           "--window-size=1100,1500", page.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.exists(), "chromium produced no screenshot"
    pixels = [p for row in _png_pixels(shot)[::3] for p in row[::3]]
    colors = set(pixels)
    assert len(colors) > 20
    assert sum(1 for p in pixels if p != (255, 255, 255)) > len(pixels) // 100
    assert (44, 160, 44) in colors  # the green verdict banner and PASS badges are on the first screen


@needs_chromium
def test_pdf_first_page_alone_states_the_verdict_and_every_check(tmp_path, run_dir):
    # given: the deletion request's run directory; when: exported with the PDF
    out = export_run(run_dir, tmp_path / "export", ["json", "html", "pdf"])
    report = build_report(*load_run(run_dir))
    # then: the PDF's first page alone holds the verdict and each check with its threshold and result
    pages = _page_texts(out / "report.pdf")
    assert len(pages) >= 2
    first = pages[0]
    assert "Verdict: PASSED" in first
    assert "Deletion request REQ-2026-0001" in first
    assert "due 2026-04-01" in first
    _assert_page_states_every_check(first, report["verdict"]["checks"])
    assert "One row per distinct value" not in first  # the evidence starts on a new page
    assert "***-***-4130" in " ".join(pages[1:])


@needs_chromium
def test_a_failed_sweep_with_many_types_and_checks_still_fits_page_one(tmp_path, report_data):
    # given: a sweep (no request), six entity types found, eight checks of which two fail
    from tests.tasks.conftest import make_run_dir

    report_data.pop("request")
    report_data["kind"] = "compliance-sweep"
    extra = [{"name": f"format_attack_{i}", "label": f"Format-aware attack number {i} on the erased values",
              "value": 6.0 + i, "threshold": 5.0, "comparison": "<=", "unit": " bits", "passed": False,
              "explanation": "How much more likely the true value is than random values of the same format, "
                             "in bits (0 = no more likely)."} for i in range(2)]
    report_data["verdict"] = {**report_data["verdict"], "passed": False,
                              "checks": report_data["verdict"]["checks"] + extra}
    run = make_run_dir(tmp_path, report_data)
    findings = run / "evidence" / "findings.parquet"
    rows = pq.read_table(findings).to_pylist()
    for i, entity in enumerate(("US_SSN", "IBAN_CODE", "CREDIT_CARD", "IP_ADDRESS")):
        rows += [{**rows[0], "finding_id": f"x{i}-{j}", "entity_type": entity, "masked_preview": "***",
                  "value_hmac": f"{i:02d}{j:02d}" * 16} for j in range(40)]
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(findings)), findings)
    # when
    out = export_run(run, tmp_path / "export", ["pdf"])
    # then
    first = _page_texts(out / "report.pdf")[0]
    assert "Verdict: FAILED — not met: Format-aware attack number 0 on the erased values, Format-aware" in first
    n = len(report_data["verdict"]["checks"])
    assert f"Audit checks ({n - 2} of {n} passed)" in first
    assert "Compliance sweep" in first
    assert "IP_ADDRESS" in first
    _assert_page_states_every_check(first, report_data["verdict"]["checks"])


@needs_chromium
def test_tampering_with_the_pdf_is_caught(tmp_path, run_dir):
    out = export_run(run_dir, tmp_path / "export", ["json", "pdf"])
    assert sorted(p.name for p in out.iterdir()) == ["evidence", "manifest.json", "report.json", "report.pdf",
                                                    "signature"]
    assert verify_report(out).ok
    data = (out / "report.pdf").read_bytes()
    (out / "report.pdf").write_bytes(data.replace(b"PASSED", b"FAILED", 1) if b"PASSED" in data
                                     else data[:-10] + b"%%EOF\n%x\n")
    result = verify_report(out)
    assert not result.ok
    assert result.problems == ["report.pdf: content changed (sha256 does not match the manifest)"]


def test_pdf_export_without_chromium_fails_before_writing(tmp_path, run_dir, monkeypatch):
    monkeypatch.setenv("REVS_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(pdf.ChromiumNotFoundError, match="REVS_CHROMIUM"):
        export_run(run_dir, tmp_path / "export", ["json", "pdf"])
    assert not (tmp_path / "export").exists() or not any((tmp_path / "export").iterdir())


def test_chromium_lookup_says_how_to_install(monkeypatch):
    monkeypatch.delenv("REVS_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pdf.ChromiumNotFoundError, match="apt-get install chromium"):
        pdf.find_chromium()
