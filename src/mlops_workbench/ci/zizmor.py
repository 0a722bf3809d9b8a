"""Supply-chain audit of a GitHub Actions workflow with zizmor, offline, as findings with a line and a fix.

zizmor (a static analyser for GitHub Actions, from its PyPI wheel) runs with
``--offline``: no GitHub API call, so online audits (does this SHA belong to
that repository, does the version comment match it) do not run; what it
checks offline is what a reviewer checks by reading: actions pinned by full
commit SHA, explicit least-privilege ``permissions:``, checkouts that do not
persist the token, no untrusted ``${{ }}`` expanded into ``run:`` scripts.
One extra offline rule of ours, ``pin-comment``: a SHA pin carries the version
it stands for in a comment (``@<sha> # v4.4.0``), so people can read it.
:func:`findings` turns zizmor's JSON into :class:`Finding` objects (pure);
:func:`audit` runs the binary.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlops_workbench import tools
from mlops_workbench.ci.findings import Finding, Severity
from mlops_workbench.errors import NotFoundError, ServiceError

DOCS = "https://docs.zizmor.sh/audits/"
SHA_PIN = re.compile(r"^\s*(-\s+)?uses:\s*['\"]?(?P<ref>[^@\s'\"]+@[0-9a-f]{40})['\"]?\s*(?P<comment>#.*)?$")
VERSION_COMMENT = re.compile(r"#\s*v?\d+(\.\d+)*")
EXAMPLE_PIN = "actions/checkout@11d5960a326750d5838078e36cf38b85af677262 # v4.4.0"
FIXES = {
    "unpinned-uses": (
        f"pin it by full commit SHA with the version in a comment, e.g. `uses: {EXAMPLE_PIN}` "
        "(the SHA of a tag: `git ls-remote https://github.com/OWNER/REPO refs/tags/TAG`)."
    ),
    "excessive-permissions": (
        "declare least-privilege permissions: `permissions: {contents: read}` at the top of "
        "the workflow, and grant a job more only where it needs it."
    ),
    "artipacked": "add `with: {persist-credentials: false}` to the actions/checkout step.",
    "template-injection": (
        "do not write `${{ ... }}` inside `run:`: pass the value through `env:` "
        '(e.g. `env: {TITLE: ${{ github.event.pull_request.title }}}`) and use "$TITLE".'
    ),
    "dangerous-triggers": "use `pull_request` instead of `pull_request_target`/`workflow_run` unless you must.",
    "cache-poisoning": "do not restore a cache in a workflow that publishes releases or artifacts.",
}
LEVELS: dict[str, Severity] = {
    "high": "error",
    "medium": "error",
    "low": "warning",
    "informational": "info",
    "unknown": "warning",
}


def zizmor_binary() -> str:
    """Path of ``zizmor`` (the venv's own first, then PATH)."""
    found = tools.find("zizmor")
    if not found:
        raise NotFoundError("zizmor is not installed: run `make setup` (it installs the zizmor wheel).")
    return found


def _primary(item: dict[str, Any]) -> dict[str, Any]:
    locations = item.get("locations") or [{}]
    return next((loc for loc in locations if loc.get("symbolic", {}).get("kind") == "Primary"), locations[0])


def findings(raw: list[dict[str, Any]]) -> list[Finding]:
    """zizmor's JSON findings (``--format json``) as :class:`Finding` objects: line, message, fix."""
    out = []
    for item in raw:
        if item.get("ignored"):
            continue
        ident = str(item.get("ident", "zizmor"))
        loc = _primary(item)
        row = (loc.get("concrete", {}).get("location", {}).get("start_point") or {}).get("row")
        feature = str(loc.get("concrete", {}).get("feature") or "").strip().splitlines()
        note = loc.get("symbolic", {}).get("annotation") or ""
        what = f" `{feature[0][:80]}`" if feature else ""
        severity = str((item.get("determinations") or {}).get("severity", "unknown")).lower()
        out.append(
            Finding(
                rule=ident,
                severity=LEVELS.get(severity, "warning"),
                message=f"{item.get('desc', ident)}{what}: {note}." if note else f"{item.get('desc', ident)}{what}.",
                fix=_pin_fix(feature[0])
                if ident == "unpinned-uses" and feature and "@" in feature[0]
                else FIXES.get(ident, f"see {item.get('url') or DOCS + '#' + ident}"),
                line=row + 1 if isinstance(row, int) else None,
            )
        )
    return out


def _pin_fix(uses: str) -> str:
    action, tag = uses.split("uses:")[-1].strip().strip("'\"").split("@", 1)
    repo = "/".join(action.split("/")[:2])
    return (
        f"pin it by full commit SHA with the tag in a comment: `uses: {action}@<40-hex SHA of {tag}> # {tag}` "
        f"(the SHA: `git ls-remote https://github.com/{repo} refs/tags/{tag}`), e.g. `uses: {EXAMPLE_PIN}`."
    )


def pin_comment_findings(text: str) -> list[Finding]:
    """A ``uses:`` pinned by SHA without the version in a comment (people cannot tell what it runs)."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        match = SHA_PIN.match(line)
        if match and not VERSION_COMMENT.search(match["comment"] or ""):
            out.append(
                Finding(
                    rule="pin-comment",
                    severity="warning",
                    line=number,
                    message=f"`{match['ref']}` is pinned by SHA but does not say which version that is.",
                    fix=f"add the tag as a comment after the SHA, e.g. `uses: {EXAMPLE_PIN}`.",
                )
            )
    return out


def audit(path: Path | str, honor_ignores: bool = True) -> list[Finding]:
    """zizmor's offline findings for one workflow file, plus ``pin-comment``.

    A file zizmor cannot read as a workflow (schema errors) gives no zizmor
    finding: the schema check reports those. ``honor_ignores=False`` ignores
    ``# zizmor: ignore[...]`` comments and zizmor.yml (for grading).
    """
    path = Path(path)
    cmd = [zizmor_binary(), "--offline", "--format", "json", "--no-progress", "--color", "never"]
    if not honor_ignores:
        cmd += ["--no-ignores", "--no-config"]
    proc = tools.call([*cmd, str(path)], timeout=120)
    if not proc.stdout.strip() and "no inputs collected" in proc.stderr:
        raw: list[dict[str, Any]] | None = []  # not a valid workflow: the schema check names the problem
    else:
        raw = _parse(proc.stdout)
    if raw is None:
        raise ServiceError(
            f"zizmor failed on {path} (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}"
        )
    return findings(raw) + pin_comment_findings(path.read_text())


def _parse(stdout: str) -> list[dict[str, Any]] | None:
    try:
        raw = json.loads(stdout)
    except json.JSONDecodeError:
        return None
    return raw if isinstance(raw, list) else None
