"""The grader's files are put back as they were after a submission ran (on a copy of the package)."""

from __future__ import annotations

import shutil

from mlops_workbench.labs import guard


def test_changed_added_and_deleted_files_are_restored_and_named(tmp_path):
    package = tmp_path / "mlops_workbench"
    shutil.copytree(guard.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "labs" / "__pycache__").mkdir()
    (package / "labs" / "__pycache__" / "grade.cpython-311.pyc").write_bytes(b"compiled before")
    lab = tmp_path / "labs" / "00-welcome"
    lab.mkdir(parents=True)
    (lab / "checks.py").write_text("CHECKS = 1\n")
    kept = guard.snapshot(lab, package)
    grade_source = (package / "labs" / "grade.py").read_bytes()

    (package / "labs" / "grade.py").write_text("def grade(*args):\n    return 'full marks'\n")
    (package / "labs" / "checks.py").unlink()
    (package / "labs" / "_planted.py").write_text("GRADE = 100\n")
    (package / "labs" / "__pycache__" / "grade.cpython-311.pyc").write_bytes(b"forged bytecode")
    (package / "labs" / "__pycache__" / "new.cpython-311.pyc").write_bytes(b"written by an import")
    (lab / "checks.py").write_text("CHECKS = 0\n")

    changed = guard.restore(kept, aside=tmp_path / "aside")
    assert changed == ["00-welcome/checks.py", "mlops_workbench/labs/__pycache__/grade.cpython-311.pyc",
                       "mlops_workbench/labs/_planted.py", "mlops_workbench/labs/checks.py",
                       "mlops_workbench/labs/grade.py"]
    assert (package / "labs" / "grade.py").read_bytes() == grade_source
    assert (package / "labs" / "checks.py").read_bytes() == (guard.PACKAGE_DIR / "labs" / "checks.py").read_bytes()
    assert not (package / "labs" / "_planted.py").exists()
    assert not list((package / "labs" / "__pycache__").iterdir()), "compiled files are rebuilt from the sources"
    assert (lab / "checks.py").read_text() == "CHECKS = 1\n"
    assert (tmp_path / "aside" / "mlops_workbench" / "labs" / "grade.py").read_text().endswith("'full marks'\n")
    assert guard.restore(kept, aside=tmp_path / "aside") == [], "nothing left to restore"
