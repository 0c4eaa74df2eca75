"""The `lantian` command: a Flask CLI group with the operator's commands."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, identity
from core.db import utcnow
from core.regions import REGION_RE
from core.web import runtime


def _create_app() -> Flask:
    from core.keys import MissingKey
    from lantian.app import create_app

    try:
        return create_app()
    except MissingKey as err:
        raise SystemExit(f"lantian: {err}") from None


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True)
def cli() -> None:
    """Lantian: vehicle emission enforcement."""


def _region(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not REGION_RE.fullmatch(value):
        raise click.BadParameter("must be a 6-digit administrative region code")
    return value


def _emit(obj: dict) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, default=str))


# --- database ----------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Schema migrations (Alembic)."""


def alembic_config(database_url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    config = Config()
    config.set_main_option("script_location", os.path.join(here, "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@db.command("upgrade")
@click.argument("revision", default="heads")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Bring the database to the current schema."""
    from alembic import command

    config = alembic_config(runtime().settings.database_url)
    config.attributes["station_key_encryption_key"] = runtime().settings.station_key_encryption_key
    command.upgrade(config, revision)
    click.echo(f"database at {revision}")


@db.command("partitions")
@with_appcontext
def db_partitions() -> None:
    """Create the coming months' partitions now (PostgreSQL; the worker does it hourly)."""
    from core import partitions

    with runtime().sessions() as session:
        created = partitions.ensure_months(session, utcnow().date())
    _emit({"created": created})


@db.command("rebuild-tested-months")
@with_appcontext
def db_rebuild_tested_months() -> None:
    """Write the tested vehicles of each month again in LANTIAN_TIMEZONE's months (after the
    zone changed: docs/scaling.md); prints {"rows": N}."""
    from remote_sensing import tested

    with runtime().sessions() as session, session.begin():
        rows = tested.rebuild(session, runtime().tz)
    _emit({"rows": rows})


@db.command("revision")
@click.option("-m", "--message", required=True)
@with_appcontext
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (for developers)."""
    from alembic import command

    command.revision(alembic_config(runtime().settings.database_url), message=message, autogenerate=True)


# --- stations ----------------------------------------------------------------------------


@cli.group()
def stations() -> None:
    """Roadside stations and their signing keys."""


def _bounded(low: float, high: float):  # type: ignore[no-untyped-def]
    def check(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
        if value is not None and not low <= value <= high:
            raise click.BadParameter(f"must be between {low:g} and {high:g}")
        return value
    return check


@stations.command("create")
@click.option("--code", required=True)
@click.option("--kind", required=True, type=click.Choice(identity.STATION_KINDS))
@click.option("--region", required=True, callback=_region)
@click.option("--name")
@click.option("--calibrated-from", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Start of the calibration window (default: 730 days before today).")
@click.option("--calibrated-until", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--location", help="Where the station stands, as officers name it.")
@click.option("--lat", type=float, callback=_bounded(-90, 90))
@click.option("--lon", type=float, callback=_bounded(-180, 180))
@with_appcontext
def stations_create(  # type: ignore[no-untyped-def]
    code: str, kind: str, region: str, name: str | None, calibrated_from, calibrated_until, location: str | None,
    lat: float | None, lon: float | None,
) -> None:
    """Register a station; prints its key id and secret once."""
    settings, today = runtime().settings, date.today()
    since = calibrated_from.date() if calibrated_from else today - timedelta(settings.station_calibrated_from_days)
    until = calibrated_until.date() if calibrated_until else today + timedelta(settings.station_calibrated_until_days)
    if since > until:
        raise click.BadParameter("must not be after --calibrated-until", param_hint="--calibrated-from")
    key_id, secret = identity.new_station_credentials()
    place = {"location": location, "lat": lat, "lon": lon}
    with runtime().sessions() as session, session.begin():
        if session.scalar(select(identity.Station).where(identity.Station.code == code)):
            raise click.ClickException(f"station {code} already exists")
        session.add(identity.Station(code=code, kind=kind, region=region, name=name, calibrated_from=since,
                                     calibrated_until=until, key_id=key_id,
                                     secret=runtime().station_box.seal(secret), **place))
        audit.append(session, actor="cli", action="station.created", subject_type="station", subject_id=code,
                     data={"kind": kind, "region": region, "calibrated_from": since.isoformat(),
                           "calibrated_until": until.isoformat(), **place})
    _emit({"code": code, "kind": kind, "region": region, "calibrated_from": since.isoformat(),
           "calibrated_until": until.isoformat(), **place, "key_id": key_id, "secret": secret})


def _set_suspended(code: str, suspended: bool) -> None:
    with runtime().sessions() as session, session.begin():
        station = _station(session, code)
        if identity.set_suspended(session, station, suspended, utcnow()):
            audit.append(session, actor="cli", action="station.suspended" if suspended else "station.resumed",
                         subject_type="station", subject_id=code)
    _emit({"code": code, "suspended": suspended})


@stations.command("list")
@with_appcontext
def stations_list() -> None:
    """One JSON line per station (never its secret)."""
    with runtime().sessions() as session:
        for st in session.scalars(select(identity.Station).order_by(identity.Station.code)):
            _emit({"code": st.code, "kind": st.kind, "region": st.region, "name": st.name, "key_id": st.key_id,
                   "suspended": st.suspended, "calibrated_until": st.calibrated_until.isoformat(),
                   "created_at": st.created_at.isoformat()})


@stations.command("rotate-secret")
@click.option("--code", required=True)
@with_appcontext
def stations_rotate_secret(code: str) -> None:
    """A new key id and secret for the station; the old ones stop signing at once."""
    key_id, secret = identity.new_station_credentials()
    with runtime().sessions() as session, session.begin():
        station = _station(session, code)
        station.key_id, station.secret = key_id, runtime().station_box.seal(secret)
        audit.append(session, actor="cli", action="station.secret_rotated", subject_type="station", subject_id=code,
                     data={"key_id": key_id})
    _emit({"code": code, "key_id": key_id, "secret": secret})


@stations.command("reseal")
@with_appcontext
def stations_reseal() -> None:
    """Encrypt every station secret again under the newest station key encryption key."""
    box = runtime().station_box
    with runtime().sessions() as session, session.begin():
        resealed = 0
        for station in session.scalars(select(identity.Station)):
            station.secret = box.reseal(station.secret)
            resealed += 1
        audit.append(session, actor="cli", action="station.secrets_resealed", subject_type="station",
                     subject_id="*", data={"stations": resealed})
    _emit({"resealed": resealed})


def _station(session: Session, code: str) -> identity.Station:
    station = session.scalar(select(identity.Station).where(identity.Station.code == code))
    if station is None:
        raise click.ClickException(f"no station {code}")
    return station


@stations.command("suspend")
@click.option("--code", required=True)
@with_appcontext
def stations_suspend(code: str) -> None:
    _set_suspended(code, True)


@stations.command("resume")
@click.option("--code", required=True)
@with_appcontext
def stations_resume(code: str) -> None:
    _set_suspended(code, False)


@cli.command("sign", with_appcontext=False)  # needs no app, database or settings
@click.option("--key-id", required=True, help="The station's key id.")
@click.option("--secret", help="The station's secret (visible to other users of this machine: prefer --secret-stdin).")
@click.option("--secret-stdin", is_flag=True, help="Read the secret from the first line of standard input.")
@click.option("--method", required=True, help="The HTTP method, such as POST.")
@click.option("--path", "path", required=True, help="The path as sent, with ?query when there is one.")
@click.option("--body-file", type=click.File("rb"), help="The exact body bytes (default: the rest of standard input).")
@click.option("--timestamp", help="Unix seconds to sign at (default: now).")
def sign(key_id: str, secret: str | None, secret_stdin: bool, method: str, path: str, body_file, timestamp):  # type: ignore[no-untyped-def]
    """Print the three signature headers a station sends with a request body (docs/stations.md).

    Needs no database: a station vendor can check their firmware's signatures with it."""
    if (secret is None) == (not secret_stdin):
        raise click.UsageError("give exactly one of --secret and --secret-stdin")
    stdin = sys.stdin.buffer
    if secret_stdin:
        secret = stdin.readline().decode().rstrip("\r\n")
    body = body_file.read() if body_file else stdin.read()
    headers = identity.signature_headers(key_id, secret, method, path, body, timestamp or str(int(time.time())))
    for name, value in headers.items():
        click.echo(f"{name}: {value}")


# --- people and organisations ------------------------------------------------------------


@cli.group()
def users() -> None:
    """People who sign in."""


@users.command("create")
@click.option("--username", required=True)
@click.option("--password", help="omit to read it from standard input (kept out of the shell history)")
@click.option("--role", required=True, type=click.Choice([r.value for r in identity.Role]))
@click.option("--region", callback=_region)
@click.option("--org", "org_code")
@with_appcontext
def users_create(username: str, password: str | None, role: str, region: str | None, org_code: str | None) -> None:
    password = password or _password_from_stdin()
    with runtime().sessions() as session, session.begin():
        if session.scalar(select(identity.User).where(identity.User.username == username)):
            raise click.ClickException(f"user {username} already exists")
        org = None
        if org_code:
            org = session.scalar(select(identity.Org).where(identity.Org.code == org_code))
            if org is None:
                raise click.ClickException(f"no org {org_code}")
        if role in ("repair_station", "inspection_station") and (org is None or org.kind != role):
            raise click.ClickException(f"a {role} user needs --org of kind {role}")
        user = identity.User(username=username, password_hash=identity.hash_password(password), role=role,
                             region=region or (org.region if org else None), org_id=org.id if org else None)
        session.add(user)
        session.flush()
        audit.append(session, actor="cli", action="user.created", subject_type="user", subject_id=user.id,
                     data={"username": username, "role": role, "region": user.region})
    _emit({"id": user.id, "username": username, "role": role, "region": user.region, "org": org_code})


def _password_from_stdin() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.ClickException("no password on standard input")
    return password


def _user(session: Session, username: str) -> identity.User:
    user = session.scalar(select(identity.User).where(identity.User.username == username))
    if user is None:
        raise click.ClickException(f"no user {username}")
    return user


def _user_view(user: identity.User) -> dict:
    return {"id": user.id, "username": user.username, "role": user.role, "region": user.region,
            "org_id": user.org_id, "active": user.active, "created_at": user.created_at.isoformat()}


@users.command("list")
@with_appcontext
def users_list() -> None:
    """One JSON line per person (never a password hash)."""
    with runtime().sessions() as session:
        for user in session.scalars(select(identity.User).order_by(identity.User.username)):
            _emit(_user_view(user))


def _change_user(username: str, action: str, change: Callable[[Session, identity.User], dict]) -> None:
    """Apply `change` to the user, end every token issued before it, record it in the audit trail."""
    with runtime().sessions() as session, session.begin():
        user = _user(session, username)
        data = change(session, user)
        user.token_version += 1
        audit.append(session, actor="cli", action=action, subject_type="user", subject_id=user.id,
                     data={"username": username, **data})
        view = _user_view(user)
    _emit(view)


@users.command("deactivate")
@click.option("--username", required=True)
@with_appcontext
def users_deactivate(username: str) -> None:
    """The person can no longer sign in; their tokens stop at once."""
    _change_user(username, "user.deactivated", lambda _s, user: setattr(user, "active", False) or {})


@users.command("activate")
@click.option("--username", required=True)
@with_appcontext
def users_activate(username: str) -> None:
    """The person may sign in again (tokens from before the deactivation stay dead)."""
    _change_user(username, "user.activated", lambda _s, user: setattr(user, "active", True) or {})


@users.command("set-password")
@click.option("--username", required=True)
@with_appcontext
def users_set_password(username: str) -> None:
    """Read the new password from standard input (one line), never the command line."""
    hashed = identity.hash_password(_password_from_stdin())
    _change_user(username, "user.password_set", lambda _s, user: setattr(user, "password_hash", hashed) or {})


@users.command("set-role")
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in identity.Role]))
@click.option("--region", callback=_region, help="the region they are limited to (omit: all regions)")
@with_appcontext
def users_set_role(username: str, role: str, region: str | None) -> None:
    """Change a person's role and region; their tokens stop at once."""

    def change(session: Session, user: identity.User) -> dict:
        org_kind = session.scalar(select(identity.Org.kind).where(identity.Org.id == user.org_id))
        if role in identity.ORG_KINDS and org_kind != role:
            raise click.ClickException(f"a {role} user must belong to an org of kind {role}")
        before = {"role": user.role, "region": user.region}
        user.role, user.region = role, region
        return {"before": before, "role": role, "region": region}

    _change_user(username, "user.role_set", change)


@cli.group()
def orgs() -> None:
    """Repair (M) and inspection (I) stations."""


@orgs.command("create")
@click.option("--code", required=True)
@click.option("--kind", required=True, type=click.Choice(identity.ORG_KINDS))
@click.option("--name", required=True)
@click.option("--region", required=True, callback=_region)
@with_appcontext
def orgs_create(code: str, kind: str, name: str, region: str) -> None:
    with runtime().sessions() as session, session.begin():
        if session.scalar(select(identity.Org).where(identity.Org.code == code)):
            raise click.ClickException(f"org {code} already exists")
        org = identity.Org(code=code, kind=kind, name=name, region=region)
        session.add(org)
        session.flush()
        audit.append(session, actor="cli", action="org.created", subject_type="org", subject_id=org.id,
                     data={"code": code, "kind": kind})
    _emit({"id": org.id, "code": code, "kind": kind, "name": name, "region": region})


# --- audit and workers -------------------------------------------------------------------


@cli.group("audit")
def audit_group() -> None:
    """The hash-chained audit trail."""


@audit_group.command("verify")
@click.option("--checkpoints", "paths", multiple=True, type=click.Path(exists=True),
              help="checkpoint files or folders (default: LANTIAN_AUDIT_CHECKPOINT_DIR)")
@with_appcontext
def audit_verify(paths: tuple[str, ...]) -> None:
    """Exit 1 naming the first broken record, or the first checkpoint the chain no longer extends."""
    settings = runtime().settings
    if not paths and settings.audit_checkpoint_dir and os.path.isdir(settings.audit_checkpoint_dir):
        paths = (settings.audit_checkpoint_dir,)
    with runtime().sessions() as session:
        report = audit.verify(session)
        result = {"ok": report.ok, "checked": report.checked, "broken_at": report.broken_at, "problem": report.problem}
        checked = 0
        for label, line in audit.checkpoint_lines(paths) if report.ok else ():
            try:
                problem = audit.extends(session, audit.parse_checkpoint(line, settings.secret_key or ""))
            except audit.BadCheckpoint as err:
                problem = str(err)
            if problem:
                result.update(ok=False, checkpoint=label, problem=problem)
                break
            checked += 1
        result["checkpoints"] = checked
    _emit(result)
    if not result["ok"]:
        sys.exit(1)


@audit_group.command("checkpoint")
@with_appcontext
def audit_checkpoint() -> None:
    """Print the head of the chain as a signed line: keep it outside the database."""
    with runtime().sessions() as session:
        click.echo(audit.head(session).signed_line(runtime().settings.secret_key or ""))


@cli.group("blacklist")
def blacklist_group() -> None:
    """Blacklists and key supervision."""


@blacklist_group.command("recompute")
@with_appcontext
def blacklist_recompute() -> None:
    """Rebuild strikes and listings from the violation history; prints a JSON summary."""
    from enforcement import listings

    with runtime().sessions() as session, session.begin():
        summary = listings.recompute(session, runtime().settings.policy)
    _emit(summary)


@cli.group("violations")
def violations_group() -> None:
    """Violations."""


@violations_group.command("keep-evidence")
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(1, 10_000))
@with_appcontext
def violations_keep_evidence(batch: int) -> None:
    """Write the kept evidence of violations from before migration 0012 (they read it
    assembled until then), one transaction per batch: safe to run, stop and re-run while the
    service runs. Prints {"kept": N}."""
    from enforcement import evidence

    kept, after, done = 0, 0, -1
    while done:
        with runtime().sessions() as session, session.begin():
            done, after = evidence.keep_missing(session, after, batch)
        kept += done
    _emit({"kept": kept})


@cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option("--simple/--fork", default=True, help="Run jobs in the worker process (default) or fork per job.")
@with_appcontext
def worker(burst: bool, simple: bool) -> None:
    """Run an RQ worker on the configured queue, with the scheduler and the periodic sweeper."""
    from workers.runner import run_worker

    run_worker(runtime().settings, burst=burst, simple=simple)


if __name__ == "__main__":
    cli()
