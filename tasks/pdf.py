"""Print an HTML report to PDF with headless Chromium (Debian's ``chromium``).

Offers :func:`find_chromium` (``REVS_CHROMIUM``, else ``chromium`` / ``chromium-browser`` / ``google-chrome`` on
``PATH``), :func:`html_to_pdf` and :class:`ChromiumNotFoundError` / :class:`PdfRenderError`.

Chromium runs with a fresh profile in a temporary directory, no network features (no QUIC, background networking,
component updates or sync), no sandbox (it runs as root in containers) and no header/footer of its own (the page's
``@page`` rules print the report id and page numbers). The report's Content-Security-Policy forbids any fetch, so
printing reads nothing but the file given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--no-pdf-header-footer")
TIMEOUT_S = 120.0


class ChromiumNotFoundError(FileNotFoundError):
    """No Chromium executable was found."""


class PdfRenderError(RuntimeError):
    """Chromium ran but wrote no PDF."""


def find_chromium() -> str:
    """Return the Chromium executable to use.

    Raises:
        ChromiumNotFoundError: Neither ``REVS_CHROMIUM`` nor a known executable on ``PATH``.
    """
    configured = os.environ.get("REVS_CHROMIUM")
    if configured:
        found = shutil.which(configured)
        if not found:
            raise ChromiumNotFoundError(f"REVS_CHROMIUM={configured}: not an executable; point it at chromium")
        return found
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise ChromiumNotFoundError("chromium not found (PDF export prints the HTML report with headless Chromium); "
                                "install it (`apt-get install chromium`) or set REVS_CHROMIUM to its path")


def html_to_pdf(html: Path, pdf: Path, timeout: float = TIMEOUT_S) -> Path:
    """Print ``html`` to ``pdf`` (A4, the page's own print CSS); return ``pdf``.

    The PDF is written next to ``pdf`` under a temporary name and renamed into place, so a failed print leaves
    nothing behind.

    Raises:
        ChromiumNotFoundError: No Chromium (see :func:`find_chromium`).
        PdfRenderError: Chromium failed, timed out or wrote no PDF.
    """
    exe, html, pdf = find_chromium(), Path(html).resolve(), Path(pdf)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="revs-chromium-") as profile:
        tmp = Path(profile) / "out.pdf"
        cmd = [exe, *FLAGS, f"--user-data-dir={Path(profile) / 'profile'}", f"--print-to-pdf={tmp}", html.as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)  # noqa: S603
        except subprocess.TimeoutExpired:
            raise PdfRenderError(f"chromium did not finish printing {html.name} within {timeout:.0f} s") from None
        if not tmp.is_file() or tmp.read_bytes()[:5] != b"%PDF-":
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            raise PdfRenderError(f"chromium wrote no PDF for {html.name} "
                                 f"(exit {done.returncode}: {tail[0][:200]})")
        shutil.move(tmp, pdf.with_name(f".{pdf.name}.tmp"))
        os.replace(pdf.with_name(f".{pdf.name}.tmp"), pdf)
    return pdf
