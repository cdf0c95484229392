"""The `collectwatch` command: parses, calls the package, prints. Nothing else."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from collectwatch.config import Settings

EXIT_ACCEPTED, EXIT_INTERNAL, EXIT_REJECTED = 0, 1, 2


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from collectwatch.generate import generate_month

    month = generate_month(
        settings, args.period, Path(args.out), args.scale, args.seed, args.format
    )
    print(
        f"generated {len(month.files)} files ({month.bytes / 1024**3:.2f} GiB) for "
        f"{month.period} in {month.out_dir} in {month.seconds:.1f} s"
    )
    for submission_type, rows in sorted(month.row_counts.items()):
        print(f"  {submission_type:<22} {rows:>12,} rows")
    print(f"planted facts: {month.planted_path}")
    return 0


def _print_result(result) -> None:
    """One line per file, its edits by class, what to do next and where the report is."""
    report = result.report
    print(f"{result.status:<18} {result.path.name}  {result.submission_id or ''}")
    if result.duplicate_of_previous:
        print("  byte-identical to this earlier submission: nothing changed")
    classes = report.classes()
    if any(classes.values()):
        counts = ", ".join(f"{rule}×{n}" for rule, n in sorted(report.rule_counts.items()))
        by_class = ", ".join(f"{name} {n}" for name, n in classes.items() if n)
        print(f"  edits: {by_class} ({counts})")
    if result.status == "needs_verification":
        print(f"  confirm with: collectwatch verify {result.submission_id}")
    if result.report_path:
        print(f"  report: {result.report_path}")


def _intake(args: argparse.Namespace, settings: Settings) -> int:
    from collectwatch.intake.process import IntakeSession

    worst = EXIT_ACCEPTED
    with IntakeSession(settings) as session:
        for path in args.paths:
            result = session.intake(Path(path))
            _print_result(result)
            if result.status == "rejected":
                worst = EXIT_REJECTED
    return worst


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from collectwatch.intake.process import IntakeSession

    worst = EXIT_ACCEPTED
    with IntakeSession(settings, record=False) as session:
        for path in args.paths:
            report = session.check(Path(path))
            print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
            if report.status == "rejected":
                worst = EXIT_REJECTED
    return worst


def _purge(args: argparse.Namespace, settings: Settings) -> int:
    from collectwatch.intake.retention import purge

    removed = purge(settings)
    for record in removed:
        print(f"removed {record['path']} ({record['bytes']} bytes, {record['reason']})")
    print(f"purged {len(removed)} files")
    return 0


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    from collectwatch.intake.process import verify

    submission = verify(args.submission_id, settings)
    print(f"{submission.submission_id}: {submission.status}")
    return 0


def _docs(args: argparse.Namespace, settings: Settings) -> int:
    from collectwatch.intake.catalogue import render_markdown

    target = Path(args.out)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_markdown())
    print(f"wrote {target}")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from collectwatch.orchestration import run_embedded
    from collectwatch.pipeline import periods_between

    periods = list(args.period or [])
    if args.from_period or args.to_period:
        if not (args.from_period and args.to_period):
            raise ValueError("--from and --to go together")
        periods += periods_between(args.from_period, args.to_period)
    outcome = run_embedded(settings, sorted(set(periods)), args.full_refresh, args.as_of)
    print(json.dumps(outcome, ensure_ascii=False, indent=2))
    return 0 if outcome["state"] == "success" else EXIT_INTERNAL


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from collectwatch.portal.app import create_app

    uvicorn.run(create_app(settings), host=args.host, port=args.port, proxy_headers=False)
    return 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from collectwatch.portal.auth import TokenStore, checked_scope

    tokens = TokenStore(settings.portal_db)
    if args.token_command == "issue":
        token, secret = tokens.issue(
            checked_scope(settings, args.scope), args.expires_in, args.name or ""
        )
        print(f"token {token.token_id}  scope {token.scope}  expires {token.expires_at}")
        print("secret (shown once, store it now):")
        print(secret)
    elif args.token_command == "revoke":
        token = tokens.revoke(args.token_id)
        print(f"token {token.token_id} revoked at {token.revoked_at}")
    else:
        for token in tokens.all():
            state = f"revoked {token.revoked_at}" if token.revoked_at else "active"
            print(
                f"{token.token_id}  {token.scope!s:<32} expires {token.expires_at}  "
                f"{state:<40} {token.name}"
            )
    return 0


def _gate(args: argparse.Namespace, settings: Settings) -> int:
    from collectwatch.gate import GATE_BLOCKED, GATE_PASSED, run_gate

    result = run_gate(
        Path(args.staged_dir),
        args.period,
        Path(args.report_dir),
        Path(args.previous) if args.previous else None,
        warehouse=Path(args.warehouse) if args.warehouse else None,
        coverage_floor=args.coverage_floor,
    )
    print(
        f"{'passed' if result.passed else 'blocked'}: {len(result.blocking_failures)} "
        f"blocking failures, {len(result.warnings)} warnings; report: {result.report_html}"
    )
    return GATE_PASSED if result.passed else GATE_BLOCKED


# Commands that start a scheduler: it never queues a task whose pool does not exist.
SCHEDULING_AIRFLOW_COMMANDS = {"standalone", "scheduler"}


def _airflow(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from collectwatch.orchestration import embedded_airflow_env, prepare_embedded_metadata

    if SCHEDULING_AIRFLOW_COMMANDS & set(args.airflow_args[:1]):
        prepare_embedded_metadata(settings)
    env = {**os.environ, **embedded_airflow_env(settings)}
    return subprocess.call([sys.executable, "-m", "airflow", *args.airflow_args], env=env)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="collectwatch", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write a synthetic month of submissions")
    generate.add_argument("--period", required=True, help="YYYY-MM")
    generate.add_argument("--scale", choices=("small", "national"), default="small")
    generate.add_argument("--seed", type=int, default=1)
    generate.add_argument("--out", required=True, help="folder; files go to <out>/<USCC>/")
    generate.add_argument("--format", choices=("csv", "parquet"), default="csv")
    generate.set_defaults(handler=_generate)

    intake = commands.add_parser("intake", help="submit files (exit 0 accepted, 2 rejected)")
    intake.add_argument("paths", nargs="+")
    intake.set_defaults(handler=_intake)

    check = commands.add_parser("check", help="run every edit without submitting anything")
    check.add_argument("paths", nargs="+")
    check.set_defaults(handler=_check)

    verify = commands.add_parser("verify", help="confirm a submission held by quality edits")
    verify.add_argument("submission_id")
    verify.set_defaults(handler=_verify)

    purge = commands.add_parser(
        "purge", help="remove quarantined and archived files past retention"
    )
    purge.set_defaults(handler=_purge)

    docs = commands.add_parser("docs", help="render docs/edits.md from the edit catalogue")
    docs.add_argument("--out", default=str(Settings.from_env().project_dir / "docs" / "edits.md"))
    docs.set_defaults(handler=_docs)

    run = commands.add_parser(
        "run", help="collect + nightly through dag.test(); periods as given, else planned"
    )
    run.add_argument("--period", action="append", help="YYYY-MM (repeatable: a backfill)")
    run.add_argument("--from", dest="from_period", help="first YYYY-MM of a backfill range")
    run.add_argument("--to", dest="to_period", help="last YYYY-MM of a backfill range")
    run.add_argument("--full-refresh", action="store_true")
    run.add_argument("--as-of", default=None, help="release-status clock (ISO 8601)")
    run.set_defaults(handler=_run)

    gate = commands.add_parser(
        "gate", help="the GX gate over a staged publication folder (exit 0 passed, 2 blocked)"
    )
    gate.add_argument("staged_dir", help="holds internal/<table>.parquet (and public/)")
    gate.add_argument("--period", action="append", required=True, help="YYYY-MM (repeatable)")
    gate.add_argument("--report-dir", required=True, help="gate_report.json and .html go here")
    gate.add_argument("--previous", help="the period's last published folder (drift warnings)")
    gate.add_argument("--warehouse", help="the candidate warehouse the files came from")
    gate.add_argument("--coverage-floor", type=float, help="default: the configured floor")
    gate.set_defaults(handler=_gate)

    serve = commands.add_parser("serve", help="the portal (downloads, uploads, bulletin)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=_serve)

    token = commands.add_parser("token", help="issue, revoke and list portal access tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    issue = token_commands.add_parser("issue", help="a new token (its secret is shown once)")
    issue.add_argument(
        "--scope", required=True, help="national | public | province:<code> | submitter:<USCC>"
    )
    issue.add_argument("--expires-in", type=float, default=90, help="days (default 90)")
    issue.add_argument("--name", default="", help="who holds it (for the audit log)")
    revoke = token_commands.add_parser("revoke", help="refuse a token from now on")
    revoke.add_argument("token_id")
    token_commands.add_parser("list", help="every token (never the secrets)")
    token.set_defaults(handler=_token)

    airflow = commands.add_parser("airflow", help="the airflow CLI on the embedded metadata")
    airflow.add_argument("airflow_args", nargs=argparse.REMAINDER)
    airflow.set_defaults(handler=_airflow)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    try:
        return args.handler(args, settings)
    except (ValueError, KeyError, FileNotFoundError) as error:
        print(f"collectwatch {args.command}: {error}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
