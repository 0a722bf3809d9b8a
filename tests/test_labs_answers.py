"""Answer functions found in answer cells' syntax trees (pure logic on plain strings, and the lab.yaml field)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mlops_workbench.labs.answers import aliases, scan
from mlops_workbench.labs.format import AnswerFunction, Lab, LabFormatError

ROOT = Path(__file__).resolve().parents[1]
PROMOTE = AnswerFunction(
    call="mlops_workbench.registry.promote",
    cells=["promote"],
    instead="write the promotion with `MlflowClient.set_registered_model_alias`",
)
SETUP = "from mlops_workbench import registry, tracking\nclient = registry.client()\n"


def found(answer: str, setup: str = SETUP, **cells: str) -> list[tuple[str, int]]:
    sources = {"setup": setup, "promote": answer, **cells}
    return [(v.cell, v.line) for v in scan(sources, [PROMOTE], editable=[c for c in sources if c != "setup"])]


@pytest.mark.parametrize(
    "answer",
    [
        "registry.promote('iris', 2)",
        "x = 1\nimport mlops_workbench.registry as r\nr.promote('iris', 2)",
        "from mlops_workbench.registry import promote as p\np()",
        "from mlops_workbench.registry import promote",
        "import mlops_workbench.registry\nmlops_workbench.registry.promote('iris', 2)",
        "f = registry.promote",
        "reg = registry\nalias = reg\nalias.promote('iris', 2)",
        "getattr(registry, 'promote')('iris', 2)",
        "import importlib\nimportlib.import_module('mlops_workbench.registry').promote()",
        "__import__('mlops_workbench').registry.promote()",
        "registry.promote.__wrapped__()",
        "def mine():\n    return registry.promote('iris', 2)",
        "%time registry.promote('iris', 2)",
        "!echo hi\n%matplotlib inline\nregistry.promote('iris', 2)",
    ],
)
def test_references_through_imports_and_aliases_are_found(answer):
    assert [cell for cell, _ in found(answer)] == ["promote"], answer


def test_the_line_is_the_line_in_the_cell():
    assert found("a = 1\n\nregistry.promote('iris', 2)") == [("promote", 3)]
    assert found("x = 1\nfrom mlops_workbench.registry import promote\npromote()") == [("promote", 2)]


def test_star_import_counts_unless_the_learner_defines_the_name():
    assert found("from mlops_workbench.registry import *\npromote('iris', 2)") == [("promote", 2)]
    own = "from mlops_workbench.registry import *\ndef promote(client, version):\n    pass\npromote(client, 2)"
    assert found(own) == []


@pytest.mark.parametrize(
    "answer",
    [
        (
            "def promote(client, name, version):\n    client.set_registered_model_alias(name, 'production', version)\n"
            "promote(client, 'iris', 2)"
        ),
        "client.promote('iris', 2)",  # a method of the learner's own object
        "registry.rollback('iris')",  # another package function, not banned here
        "promote = lambda: None\npromote()",
        "from mlops_workbench import registry\nregistry.get_alias('iris', 'production')",
        "# registry.promote('iris', 2)\ntext = 'registry.promote'",
        "raise NotImplementedError('Exercise: write your code here')",
    ],
)
def test_same_names_comments_strings_and_other_functions_are_not_flagged(answer):
    assert found(answer) == [], answer


def test_an_import_in_one_cell_is_caught_where_the_name_is_used():
    assert found("p('iris', 2)", other="from mlops_workbench.registry import promote as p") == [
        ("promote", 1),
        ("other", 1),
    ]
    # the read-only setup cell binds names for every cell, but is never reported itself
    setup = SETUP + "from mlops_workbench.registry import promote as given\n"
    assert found("given('iris', 2)", setup=setup) == [("promote", 1)]
    assert found("x = 1", setup=setup) == []


def test_cells_that_do_not_parse_never_crash_the_scan():
    assert found("def broken(:\nregistry.promote('iris', 2)") == [("promote", 2)]
    assert found("%%bash\necho registry.promote") == []
    assert found("\0") == [] and found("(" * 500) == []


def test_package_aliases_of_the_same_function_are_matched():
    names = aliases("mlops_workbench.versioning.log_model_run")
    assert {
        "mlops_workbench.versioning.log_model_run",
        "mlops_workbench.versioning.lineage.log_model_run",
    } <= names
    banned = AnswerFunction(call="mlops_workbench.versioning.log_model_run", cells=["log"], instead="log with mlflow")
    cell = {"log": "from mlops_workbench.versioning.lineage import log_model_run as log\nlog(ws)"}
    assert scan(cell, [banned]) == []
    (violation,) = scan(cell, [banned], expand=True)
    assert violation.message == (
        "`versioning.log_model_run` (cell 'log', line 1) does the exercise for you: log with mlflow."
    )


@pytest.fixture
def lab02(tmp_path) -> Path:
    folder = tmp_path / "labs" / "02-versioning"
    shutil.copytree(ROOT / "labs" / "02-versioning", folder)
    return folder


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        (
            {"call": "mlops_workbench.versioning.no_such_thing", "cells": ["pipeline"], "instead": "x"},
            "answer_functions[0].call 'mlops_workbench.versioning.no_such_thing' does not resolve",
        ),
        ({"call": "mlops_workbench.nowhere.add", "cells": ["pipeline"], "instead": "x"}, "does not resolve"),
        (
            {"call": "mlops_workbench.versioning.add_pipeline", "cells": ["no-such-cell"], "instead": "x"},
            "answer_functions[0].cells names ['no-such-cell'], not cell ids of",
        ),
    ],
)
def test_lab_yaml_answer_functions_must_resolve_and_name_real_cells(lab02, entry, complaint):
    spec = yaml.safe_load((lab02 / "lab.yaml").read_text())
    spec["answer_functions"] = [entry]
    (lab02 / "lab.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(LabFormatError, match="lab.yaml") as raised:
        _ = Lab(lab02).answer_functions
    assert complaint in str(raised.value)


def test_lab_yaml_answer_functions_need_cells_and_refuse_unknown_keys(lab02):
    spec = yaml.safe_load((lab02 / "lab.yaml").read_text())
    for entry, complaint in [
        ({"call": "mlops_workbench.versioning.add_pipeline", "cells": [], "instead": "x"}, "answer_functions.0.cells"),
        (
            {"call": "mlops_workbench.versioning.add_pipeline", "cells": ["pipeline"], "instead": "x", "points": 1},
            "answer_functions.0.points",
        ),
    ]:
        spec["answer_functions"] = [entry]
        (lab02 / "lab.yaml").write_text(yaml.safe_dump(spec))
        with pytest.raises(LabFormatError, match=complaint.replace(".", r"\.")):
            _ = Lab(lab02).spec


def test_every_lab_declares_answer_functions_that_resolve():
    for lab in Lab.all(ROOT / "labs"):
        assert isinstance(lab.answer_functions, list), lab.id


def test_no_reference_solution_calls_its_own_labs_answer_functions():
    import nbformat

    from mlops_workbench.labs.grade import answer_violations
    from mlops_workbench.labs.release import learner_notebook

    for lab in Lab.all(ROOT / "labs"):
        released = learner_notebook(lab)
        assert answer_violations(lab, nbformat.read(lab.source, as_version=4), released) == [], lab.id
        assert answer_violations(lab, released, released) == [], lab.id


def test_the_body_of_a_writefile_cell_is_scanned_whatever_the_file_is_called():
    body = "from mlops_workbench import registry\ndef promote_it(client):\n    return registry.promote('iris', 2)\n"
    assert [cell for cell, _ in found("%%writefile promote_it.py\n" + body)] == ["promote"]
    assert [cell for cell, _ in found("%%writefile notes.txt\n" + body)] == ["promote"]  # exec(open(...)) later
