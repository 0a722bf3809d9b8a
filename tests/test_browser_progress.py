"""The Progress tile in a real browser: JupyterLab (started like `make lab`) in Debian's headless Chromium.

The state folder holds one graded report of lab 00 with a failing check; the tile must open a page that shows
the lab's score and that check's message, read afresh on every request. Screenshots go to build/screenshots/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import CHROMIUM, lab_page, launcher_tile, shot

from mlops_workbench import procs, settings
from mlops_workbench.labs import checklog
from mlops_workbench.labs.report import CheckResult, Report
from mlops_workbench.workbench import Workbench

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"),
]

MESSAGE = "hello.txt does not exist: write it with Path('hello.txt').write_text(...) in the exercise cell."


def graded(home: Path) -> None:
    """A grading of lab 00 left in the learner's state folder: 3/5, hello-file and seeded-sample failing."""
    checks = [
        CheckResult(
            id=cid,
            description=cid,
            status="failed" if message else "passed",
            score=0.0 if message else points,
            max_score=points,
            visibility=visibility,
            message=message,
        )
        for cid, points, visibility, message in [
            ("hello-file", 1, "public", MESSAGE),
            ("iris-rows", 1, "public", ""),
            ("seeded-sample", 2, "hidden", "sample does not match a draw from default_rng(seed)."),
            ("state-folder", 1, "public", ""),
        ]
    ]
    report = Report(
        lab="00-welcome",
        title="Welcome to the workbench",
        submission="notebooks/00-welcome.ipynb",
        score=2.0,
        max_score=5.0,
        pass_mark=0.8,
        passed=False,
        checks=checks,
    )
    results = settings.layout(home).results
    results.mkdir(parents=True)
    (results / "00-welcome.json").write_text(report.model_dump_json(indent=1))


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("progress-home")
    graded(home)
    yield home
    procs.stop_all(Workbench.from_env(home))


def test_progress_tile_opens_the_learners_progress_page(state, tmp_path_factory):
    with lab_page(state, tmp_path_factory, ready=False) as (browser, page):
        tile = launcher_tile(page, "Progress")
        shot(page, "progress-launcher")
        with browser.expect_page(timeout=120_000) as opened:
            tile.click()
        progress = opened.value
        progress.get_by_text("Your progress").wait_for(timeout=120_000)
        assert progress.url.rstrip("/").endswith("/progress"), progress.url
        row = progress.locator('tr[data-lab="00-welcome"]')
        assert "2/5 not passed" in row.inner_text()
        assert MESSAGE in row.inner_text() and "seeded-sample" in row.inner_text()
        assert MESSAGE in progress.locator(".next").inner_text()  # the first failing check is the next step
        assert "not started" in progress.locator('tr[data-lab="01-ci-basics"]').inner_text()
        shot(progress, "progress-page")

        # read afresh on every request: a check() that passes now moves the next step on
        passed = CheckResult(
            id="hello-file", description="hello-file", status="passed", score=1, max_score=1, visibility="public"
        )
        checklog.append(Workbench.from_env(state), "00-welcome", "check", [passed])
        progress.reload()
        progress.get_by_text("Your progress").wait_for()
        assert "sample does not match a draw" in progress.locator(".next").inner_text()
        assert MESSAGE not in progress.locator('tr[data-lab="00-welcome"]').inner_text()
        shot(progress, "progress-page-after-check")
        progress.close()
        page.close()
