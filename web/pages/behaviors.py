"""Behavior pages: list, create, edit the YAML text (new version per save), import, run."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.behaviors.dry_run import DRY_RUN_TRIGGER
from shared.behaviors.packages import import_package
from shared.behaviors.registry import registered
from shared.behaviors.store import MAX_PAYLOAD_BYTES, DefinitionInvalid, save_behavior
from shared.models import Account, Behavior, BehaviorVersion, Run, Schedule

from ..db import db, settings

bp = Blueprint("behaviors", __name__, url_prefix="/behaviors")

PACKAGE_FILE = Path(__file__).resolve().parents[2] / "packages" / "salesforce-bot.yaml"
EXAMPLE = """\
name: my-behavior
description: What it does
account: {account}
inputs:
  email: {{type: string, required: true}}
steps:
  - id: contact
    action: salesforce.query
    soql: "SELECT Id, Name FROM Contact WHERE Email = {{{{ inputs.email | soql }}}} LIMIT 1"
result: "{{{{ steps.contact.records }}}}"
"""


def _account_names() -> list[str]:
    return list(db().scalars(select(Account.name).order_by(Account.name)))


@contextmanager
def _saving(problems: list[str], conflict: str) -> Iterator[Session]:
    """Yield the request session and commit; on invalid definitions or a concurrent save
    (`conflict`), roll back and add to `problems` instead of raising."""
    session = db()
    try:
        yield session
        session.commit()
    except DefinitionInvalid as exc:
        session.rollback()
        problems.extend(exc.problems)
    except IntegrityError:
        session.rollback()
        problems.append(conflict)


def _behavior_or_404(name: str) -> Behavior:
    behavior = db().scalars(select(Behavior).where(Behavior.name == name)).one_or_none()
    if behavior is None:
        abort(404)
    return behavior


@bp.get("/")
def index() -> Any:
    behaviors = db().scalars(select(Behavior).order_by(Behavior.name)).all()
    current = db().execute(
        select(Behavior.name, BehaviorVersion.definition)
        .join(BehaviorVersion, BehaviorVersion.behavior_id == Behavior.id)
        .where(BehaviorVersion.version == Behavior.current_version)
    )
    account_of = {name: (definition or {}).get("account") for name, definition in current}
    stored = {b.name for b in behaviors}
    python = [item for name, item in sorted(registered().items()) if name not in stored]
    latest = select(func.max(Run.id)).group_by(Run.behavior_name)
    last_run = {
        run.behavior_name: run for run in db().scalars(select(Run).where(Run.id.in_(latest)))
    }
    account_ids = dict(db().execute(select(Account.name, Account.id)).all())
    return render_template(
        "behaviors/index.html",
        behaviors=behaviors,
        python=python,
        account_of=account_of,
        account_ids=account_ids,
        last_run=last_run,
        accounts=_account_names(),
    )


@bp.route("/new", methods=["GET", "POST"])
def new() -> Any:
    accounts = _account_names()
    source = EXAMPLE.format(account=accounts[0] if accounts else "acme-prod")
    problems: list[str] = []
    if request.method == "POST":
        source = request.form.get("source", "")
        conflict = "name: a behavior with this name was just created; reload and edit it"
        with _saving(problems, conflict) as session:
            name = _peek_name(source)
            if name and session.scalar(select(Behavior.id).where(Behavior.name == name)):
                raise DefinitionInvalid([f'name: a behavior named "{name}" exists already'])
            behavior, version, _ = save_behavior(session, source)
        if not problems:
            flash(f"Created {behavior.name} (version {version.version}).", "success")
            return redirect(url_for("behaviors.detail", name=behavior.name))
    status = 422 if problems else 200
    return render_template(
        "behaviors/new.html",
        source=source,
        problems=problems,
        problem_marks=problem_lines(source, problems),
    ), status


def _peek_name(source: str) -> str | None:
    from shared.behaviors.definition import ParseError, parse_source

    try:
        parsed = parse_source(source)
    except ParseError:
        return None
    return parsed.get("name") if isinstance(parsed, dict) else None


def _versions(behavior: Behavior) -> list[BehaviorVersion]:
    return list(
        db().scalars(
            select(BehaviorVersion)
            .where(BehaviorVersion.behavior_id == behavior.id)
            .order_by(BehaviorVersion.version.desc())
        )
    )


@bp.route("/<name>", methods=["GET", "POST"])
def detail(name: str) -> Any:
    behavior = _behavior_or_404(name)
    versions = _versions(behavior)
    shown = versions[0] if versions else None
    wanted = request.args.get("version", type=int)
    if wanted is not None:
        shown = next((v for v in versions if v.version == wanted), None)
        if shown is None:
            abort(404)
    source = shown.source if shown else ""
    problems: list[str] = []
    if request.method == "POST":
        source = request.form.get("source", "")
        with _saving(problems, "the behavior was saved concurrently; try again") as session:
            _, version, _ = save_behavior(session, source, expected_name=name)
        if not problems:
            flash(f"Saved version {version.version}.", "success")
            return redirect(url_for("behaviors.detail", name=name))
    return _render_detail(behavior, versions, shown, source, problems)


def _render_detail(
    behavior: Behavior,
    versions: list[BehaviorVersion],
    shown: BehaviorVersion | None,
    source: str,
    problems: list[str],
    *,
    payload: str | None = None,
    payload_problems: list[str] | None = None,
) -> Any:
    definition = shown.definition if shown else {}
    status = 422 if problems or payload_problems else 200
    account_name = definition.get("account")
    account = (
        db().scalars(select(Account).where(Account.name == account_name)).one_or_none()
        if account_name
        else None
    )
    recent = db().scalars(
        select(Run).where(Run.behavior_name == behavior.name).order_by(Run.id.desc()).limit(10)
    )
    return (
        render_template(
            "behaviors/detail.html",
            behavior=behavior,
            account=account,
            recent=list(recent),
            schedules=db()
            .scalars(
                select(Schedule)
                .where(Schedule.behavior_name == behavior.name)
                .order_by(Schedule.name)
            )
            .all(),
            versions=versions,
            shown=shown,
            source=source,
            problems=problems,
            problem_marks=problem_lines(source, problems),
            definition=definition,
            payload=payload
            if payload is not None
            else _example_payload(definition.get("inputs") or {}),
            payload_problems=payload_problems or [],
            max_payload_bytes=MAX_PAYLOAD_BYTES,
        ),
        status,
    )


PROBLEM_PATH = re.compile(r"^(?P<path>[A-Za-z_][\w\-]*(?:\[\d+\]|\.[\w\-]+)*): ")
YAML_LINE = re.compile(r"\bline (\d+)")


def problem_lines(source: str, problems: list[str]) -> list[dict[str, Any]]:
    """Where each problem is in the text, for the editor's markers: a problem's path
    (`steps[1].soql: ...`) is looked up in the YAML node tree (the deepest node that exists,
    so a missing key points at its parent); a parse error names its own line."""
    import yaml

    try:
        root = yaml.compose(source)
    except yaml.YAMLError:
        root = None
    marks = []
    for problem in problems:
        line = None
        if problem.startswith("source:"):
            found = YAML_LINE.search(problem)
            line = int(found.group(1)) if found else None
        elif root is not None and (match := PROBLEM_PATH.match(problem)):
            line = _node_line(root, match.group("path"))
        if line is not None:
            marks.append({"line": line, "message": problem})
    return marks


def _node_line(root: Any, path: str) -> int:
    import yaml

    node, line = root, root.start_mark.line + 1
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if isinstance(node, yaml.MappingNode) and not part.startswith("["):
            pair = next((kv for kv in node.value if kv[0].value == part), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and part.startswith("["):
            index = int(part[1:-1])
            if index >= len(node.value):
                break
            node = node.value[index]
            line = node.start_mark.line + 1
        else:
            break
    return line


@bp.get("/<name>/diff")
def diff(name: str) -> Any:
    """Two versions side by side (difflib's HTML table)."""
    import difflib

    behavior = _behavior_or_404(name)
    versions = {v.version: v for v in _versions(behavior)}
    new = request.args.get("to", type=int) or behavior.current_version
    old = request.args.get("from", type=int) or new - 1
    if old not in versions or new not in versions:
        abort(404)
    table = difflib.HtmlDiff(wrapcolumn=70).make_table(
        versions[old].source.splitlines(),
        versions[new].source.splitlines(),
        f"v{old}",
        f"v{new}",
        context=False,
    )
    return render_template(
        "behaviors/diff.html",
        behavior=behavior,
        table=Markup(table),
        old=old,
        new=new,
        versions=sorted(versions),
    )


def _example_payload(inputs: dict[str, Any]) -> str:
    examples = {"string": "", "integer": 0, "number": 0, "boolean": False, "object": {}}
    payload = {}
    for name, spec in inputs.items():
        if spec.get("required") or "default" in spec:
            default = spec.get("default")
            payload[name] = default if default is not None else examples.get(spec.get("type"), [])
    return json.dumps(payload, indent=2)


@bp.post("/<name>/delete")
def delete(name: str) -> Any:
    session = db()
    session.delete(_behavior_or_404(name))
    session.commit()
    flash(f"Deleted {name}. Its runs are kept.", "success")
    return redirect(url_for("behaviors.index"))


@bp.post("/<name>/run")
def run(name: str) -> Any:
    from shared.runs import BehaviorNotFound, PayloadInvalid, create_run

    dry_run = request.form.get("mode") == "dry_run"
    raw = request.form.get("payload", "").strip() or "{}"
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        return _rejected(name, raw, [f"The payload is not valid JSON: {exc}"])
    session = db()
    try:
        run_row, _ = create_run(
            session,
            name,
            payload,
            trigger=DRY_RUN_TRIGGER if dry_run else "manual",
            # A dry run makes one attempt (unless the behavior sets its own): a retry would
            # only repeat the reads.
            default_max_attempts=1 if dry_run else settings().run_max_attempts,
        )
        session.commit()
    except PayloadInvalid as exc:
        session.rollback()
        return _rejected(name, raw, [f"The payload was rejected: {p}" for p in exc.problems])
    except BehaviorNotFound:
        session.rollback()
        abort(404)
    from worker.tasks.runs import enqueue

    # The run row is committed first (outbox); if sending fails, the re-queue sweep sends it.
    enqueue(run_row.id)
    return redirect(url_for("runs.detail", run_id=run_row.id))


def _rejected(name: str, raw: str, problems: list[str]) -> Any:
    """The behavior's page again (422) with the rejected payload in the box, whatever its
    size, and the problems beside it."""
    behavior = _behavior_or_404(name)
    versions = _versions(behavior)
    shown = versions[0] if versions else None
    return _render_detail(
        behavior,
        versions,
        shown,
        shown.source if shown else "",
        [],
        payload=raw,
        payload_problems=problems,
    )


@bp.route("/import", methods=["GET", "POST"])
def import_() -> Any:
    """Import in two steps: the first POST shows what would be created and changed (a dry
    run, with a diff per changed behavior); only the confirm POST saves, and it changes
    existing behaviors only when the user chose "Create and update"."""
    accounts = _account_names()
    problems: list[str] = []
    report = None
    source = ""
    bundled = request.form.get("bundled") == "salesforce-bot"
    account = request.form.get("account", "").strip()
    confirm = request.form.get("confirm") in ("create", "update")
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is not None and upload.filename:
            source = upload.read().decode("utf-8", errors="replace")
        else:
            source = request.form.get("source", "")
        if bundled:
            source = PACKAGE_FILE.read_text()
        if not source.strip():
            problems = ["source: choose a file or paste the package text"]
        else:
            with _saving(problems, "behaviors were saved concurrently; try again") as session:
                report = import_package(
                    session,
                    source,
                    account=account or None,
                    update=request.form.get("confirm") == "update" or not confirm,
                    dry_run=not confirm,
                )
    status = 422 if problems else 200
    return (
        render_template(
            "behaviors/import.html",
            accounts=accounts,
            account=account,
            problems=problems,
            report=report.to_dict() if report else None,
            source=source if (problems or (report and report.dry_run)) and not bundled else "",
            from_bundle=bundled,
            bundled=PACKAGE_FILE.exists(),
        ),
        status,
    )
