"""Checks for lab 00: workspace files, a dataset, a seeded draw and the state folder."""

import numpy as np

from mlops_workbench.labs.checks import Context, check, fail


@check("hello-file", points=1, cells=["hello-file"])
def hello_file(ctx: Context) -> None:
    """hello.txt in the workspace mentions your name."""
    path = ctx.workspace / "hello.txt"
    if not path.is_file():
        fail(f"{path} does not exist: write it with Path('hello.txt').write_text(...) in the exercise cell.")
    name = ctx.var("name", kind=str)
    if str(name) not in path.read_text():
        fail(f"hello.txt does not contain your name ({name!r}): put the `name` parameter into the text.")


@check("iris-rows", points=1, cells=["iris-rows"])
def iris_rows(ctx: Context) -> None:
    """n_samples is the number of rows in Iris."""
    n = ctx.var("n_samples", kind=int)
    if n != 150:
        fail(f"n_samples is {n!r}, not the number of rows in Iris: use load_iris().data.shape[0].")


@check("seeded-sample", points=2, hidden=True, cells=["seeded-sample"])
def seeded_sample(ctx: Context) -> None:
    """sample is the seeded draw of five integers."""
    expected = np.random.default_rng(ctx.var("seed", kind=int)).integers(0, 100, size=5).tolist()
    if ctx.var("sample", kind=list) != expected:
        fail(
            "sample does not match a draw from default_rng(seed): use the `seed` parameter and convert with .tolist()."
        )


@check("state-folder", points=1, cells=["state-folder"])
def state_folder(ctx: Context) -> None:
    """state_folder names the lab's state folder."""
    value = ctx.var("state_folder", kind=str)
    if str(value) != str(ctx.home):
        fail(f"state_folder is {value!r}, but this lab keeps its state in {ctx.home}: use str(lab.home).")
