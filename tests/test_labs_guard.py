"""The grader names every file of its own that a submission changed, and never writes a source back (on a copy of
the package: the real one may be a checkout with work in progress)."""

from __future__ import annotations

import shutil

from mlops_workbench.labs import guard


def test_changed_added_and_deleted_files_are_named_and_left_as_they_are(tmp_path):
    package = tmp_path / "mlops_workbench"
    shutil.copytree(guard.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    caches = package / "labs" / "__pycache__"
    caches.mkdir()
    (caches / "grade.cpython-311.pyc").write_bytes(b"compiled before")
    (caches / "report.cpython-311.pyc").write_bytes(b"compiled before, untouched")
    lab = tmp_path / "labs" / "00-welcome"
    lab.mkdir(parents=True)
    (lab / "checks.py").write_text("CHECKS = 1\n")
    kept = guard.snapshot(lab, package)
    assert guard.changes(kept) == [], "nothing changed yet"

    (package / "labs" / "grade.py").write_text("def grade(*args):\n    return 'full marks'\n")
    (package / "labs" / "checks.py").unlink()
    (package / "labs" / "_planted.py").write_text("GRADE = 100\n")
    (caches / "grade.cpython-311.pyc").write_bytes(b"forged bytecode")
    (caches / "new.cpython-311.pyc").write_bytes(b"written by an import")
    (lab / "checks.py").write_text("CHECKS = 0\n")

    assert guard.changes(kept) == [
        "00-welcome/checks.py",
        "mlops_workbench/labs/_planted.py",
        "mlops_workbench/labs/checks.py",
        "mlops_workbench/labs/grade.py",
    ]
    assert (package / "labs" / "grade.py").read_text().endswith("'full marks'\n"), "a source is never written back"
    assert (lab / "checks.py").read_text() == "CHECKS = 0\n" and (package / "labs" / "_planted.py").exists()
    assert sorted(p.name for p in caches.iterdir()) == ["report.cpython-311.pyc"], (
        "new or changed compiled files go (Python rebuilds them from the checked sources); the rest stay"
    )


def test_a_file_that_vanishes_between_listing_and_reading_is_left_out(tmp_path, monkeypatch):
    """Two gradings side by side: one deletes a bytecode cache it wrote while the other lists the package."""
    root = tmp_path.resolve()
    (root / "a.py").write_text("x = 1\n")
    gone = root / "__pycache__" / "b.cpython-311.pyc"
    monkeypatch.setattr(guard, "_walk", lambda roots: [root / "a.py", gone])
    snap = guard.snapshot(root)
    assert list(snap.digests) == [root / "a.py"]
    assert guard.changes(snap) == []
    (root / "a.py").write_text("x = 2\n")
    assert guard.changes(snap) == [f"{root.name}/a.py"], "a real change is still named"
