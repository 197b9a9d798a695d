"""The zoo site: plain files that a headless Chromium renders from disk, listing every
entry, sorting its table, and showing each entry's top-1 and curves."""

import os
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from reszoo.cli.app import app
from tests.helpers import tiny_zoo

runner = CliRunner()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def rendered(url: str) -> str:
    """The DOM of ``url`` after Chromium loaded it (scripts run, images fetched)."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI must render the zoo site: .ci/run installs Debian's chromium")
        pytest.skip("no Chromium here: apt-get install chromium")
    flags = ["--headless", "--disable-gpu", "--no-first-run", "--dump-dom"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    result = subprocess.run([CHROMIUM, *flags, url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def missing_figures(dom: str) -> list[str]:
    """Figures that did not load: the page replaces each with "(figure missing: FILE)"."""
    return re.findall(r"\(figure missing: ([^)']+)\)", dom)


def test_the_site_lists_every_entry_sorts_and_shows_each_entrys_top1_and_curves(tmp_path):
    registry = tiny_zoo(tmp_path / "zoo.db")
    out = tmp_path / "site"
    result = runner.invoke(app, ["--registry", registry.url, "site", "--out", str(out)])
    assert result.exit_code == 0, result.output

    index = rendered((out / "index.html").as_uri() + "#sort=-top1")
    rows = re.findall(r'<tr id="([^"]+)">', index)
    assert rows == ["tiny@2", "tiny@1", "tiny-plain@1"]  # every entry, sorted by the address's #sort=-top1
    assert 'aria-sort="descending"' in index and "62.50" in index and "0.250" in index
    assert '<img src="chart-eager-cpu-test-cpu-1-thread.png"' in index and missing_figures(index) == []

    page = rendered((out / "tiny-plain-v1.html").as_uri())
    assert re.search(r'<p class="top1" id="top1">top-1 37.50% on synthetic</p>', page)
    assert '<img src="tiny-plain-v1.png"' in page and missing_figures(page) == []  # the curves loaded
    assert "reszoo pull tiny-plain@1" in page and '<a href="tiny-v2.html">tiny@2</a>' in page  # pull, lineage
    assert "0.125" in page  # its latency row
    (out / "tiny-plain-v1.png").unlink()
    assert missing_figures(rendered((out / "tiny-plain-v1.html").as_uri())) == ["tiny-plain-v1.png"]


def test_the_site_is_self_contained_and_drawn_again_the_same(tmp_path):
    from reszoo.site import write_site

    registry = tiny_zoo(tmp_path / "zoo.db")
    out = tmp_path / "site"
    files = write_site(registry, out)
    pages = {path.name: path.read_text() for path in files if path.suffix in (".html", ".css", ".js")}
    assert sorted(pages) == ["index.html", "sort.js", "style.css", "tiny-plain-v1.html", "tiny-v1.html", "tiny-v2.html"]
    for name, text in pages.items():
        assert not re.search(r"(src|href)=\"(https?:)?//", text), name  # nothing fetched from the network
    (out / "notes.txt").write_text("mine")
    registry.remove("tiny-plain@1")
    write_site(registry, out)
    assert not (out / "tiny-plain-v1.html").exists() and not (out / "tiny-plain-v1.png").exists()
    assert (out / "notes.txt").read_text() == "mine"  # only the site's own files are removed
    assert (out / "tiny-v2.html").read_text() == pages["tiny-v2.html"]  # the same entry, the same page
