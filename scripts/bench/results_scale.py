"""Benchmark experiment results and rollout guardrails at scale on PostgreSQL.

Claim under test: ``GET /api/experiments/{id}/results`` answers in ≤ 1 s with 1,000,000 events
from 100,000 subjects, and a rollout guardrail check costs what the number of subjects costs,
not the number of events.

What it does (everything on loopback, everything it starts is stopped at the end, also on
Ctrl-C, SIGTERM, an error or the --timeout):

1. starts a throwaway PostgreSQL (initdb + pg_ctl as the postgres user, temp data dir,
   127.0.0.1 on a free port; or uses --postgres-url, where it creates and later drops its own
   database), migrates it with chatver's real migrations (upgrade_database), starts
   ``chatver serve`` on it, creates a bundle with two versions and a running experiment
   (control/treatment, guardrails error_rate and latency_ms.p95, primary metric thumbs_up);
2. loads pre-period traffic on production (so the CUPED joins have work to do), then the
   experiment's events, then the events of four rollout steps, through chatver's storage
   code: ``repository.add_events`` + ``subject_repository.add_event_aggregates`` in one
   transaction per batch, as ``EventWriter._store`` does, and thumbs_up outcomes as bulk
   ``upsert_outcome`` equivalents plus the per-unit outcome sums ``add_outcome`` keeps;
3. ANALYZE, then times the results endpoint over HTTP, the same call in-process split per
   query, and ``rollouts.service.step_evidence`` (the guardrail check of one step) at
   10k / 100k / 1M events over 10k subjects and at 1M events over 100k subjects (--rollouts);
4. times the peer the old code used in the same run — every latency of the experiment's
   events loaded into Python and COUNT(DISTINCT subject) over chat_event — and reports
   the new/old ratio;
5. prints Markdown tables.

    .venv/bin/python scripts/bench/results_scale.py [--events 1000000] [--subjects 100000]
        [--rounds 5] [--rollouts 10000/10000,...] [--postgres-url postgresql://…/postgres] [--keep]

Full size takes several minutes, most of it loading ~3.3M events. Numbers depend on the
machine (client, server and PostgreSQL share its cores), so read the ratios in one run.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, event, func, text
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from common import CHATVER, Server, free_port, seed

from app.bundles.models import Bundle
from app.db import create_db_engine, normalize_database_url, read_session, write_session
from app.events import repository
from app.events import subject_repository as subjects
from app.events.models import MetricHistogram, Outcome, SubjectAggregate, SubjectOutcome
from app.events.service import _unit_scope
from app.experiments import results as results_module
from app.experiments.assignment import Arm, assign_arm
from app.experiments.models import Experiment
from app.migrate import upgrade_database
from app.rollouts.models import Rollout
from app.rollouts.service import step_evidence

TARGET_SECONDS = 1.0
GUARDRAILS = [
    {"metric": "error_rate", "max_regression": 0.02},
    {"metric": "latency_ms.p95", "max_regression": 0.25},
]
ROLLOUT_STEPS = [5, 25, 50, 100]
ROLLOUT_STEP = 2  # the 50% step: both arms get traffic
PG_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
    "-c full_page_writes=off -c max_connections=200"
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- services


class Postgres:
    """A throwaway PostgreSQL cluster in a temp dir, run as the postgres user (as scripts/test.sh)."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "pg"
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.started = False
        initdb = shutil.which("initdb") or "/usr/lib/postgresql/15/bin/initdb"
        self.bin = Path(os.path.realpath(initdb)).parent
        self.port = 0

    def _run(self, *args: str, timeout: float = 120) -> None:
        with (self.dir / "pg_ctl.log").open("ab") as out:
            subprocess.run(
                ["runuser", "-u", "postgres", "--", *args],
                cwd="/",
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=True,
                timeout=timeout,
                start_new_session=True,  # Ctrl-C reaches this script, which then stops postgres itself
            )

    def start(self) -> str:
        (self.dir / "sock").mkdir(parents=True)
        for path in (self.dir, self.dir / "sock"):
            shutil.chown(path, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        for _attempt in range(3):
            self.port = free_port()
            try:
                self._run(
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-p {self.port} -k {self.dir / 'sock'} {PG_OPTIONS}",
                    "start",
                )
                self.started = True
                break
            except subprocess.CalledProcessError:
                log(f"postgres did not start on port {self.port}; retrying")
        if not self.started:
            raise SystemExit(f"could not start postgres; see {self.log}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if not self.started:
            return
        pid_file = self.data / "postmaster.pid"
        pid = None
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            if pid is not None:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.started = False


def start_chatver(workdir: Path, database_url: str) -> Server:
    port, admin = free_port(), "cv_bench_" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
    log_path = workdir / "chatver.log"
    env = {
        **os.environ,
        "CHATVER_DATABASE_URL": database_url,
        "CHATVER_ADMIN_KEY": admin,
        "CHATVER_LOG_LEVEL": "warning",
        "CHATVER_ROLLOUT_CHECK_SECONDS": "0",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    env.pop("CHATVER_REDIS_URL", None)
    process = subprocess.Popen(
        [CHATVER, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return Server(url, admin, process, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_process(process)
    raise SystemExit(f"chatver did not start; see {log_path}:\n{log_path.read_text()[-2000:]}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def scratch_database(server_url: str, keep: bool) -> Iterator[str]:
    """A database of its own on a server that was given (dropped at the end unless --keep)."""
    name = f"chatver_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_database_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            make_url(normalize_database_url(server_url))
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        if keep:
            log(f"--keep: database {name} left in place")
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --------------------------------------------------------------------------- API setup


@dataclass
class Setup:
    runtime: dict[str, str]
    experiment_id: str
    experiment_seed: str
    control: str  # version ids
    treatment: str
    editor: dict[str, str]


def create_experiment(server: Server) -> Setup:
    """support-bot@1 in production (common.seed), @2 in staging, and a draft experiment."""
    runtime = seed(server)
    admin = {"Authorization": f"Bearer {server.admin}"}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        response = http.post("/api/keys", json={"name": "bench-editor", "role": "editor"}, headers=admin)
        response.raise_for_status()
        editor = {"Authorization": f"Bearer {response.json()['key']}"}
        body = {
            "model": "openai/gpt-4o-mini",
            "system_prompt": "You are {{ company }}'s support agent. Be brief, {{ tone }}.\n",
            "variables": {"company": {"default": "Acme"}, "tone": {"required": True}},
            "params": {"temperature": 0.2, "max_tokens": 256},
        }
        http.post("/api/bundles/support-bot/versions", json=body, headers=editor).raise_for_status()
        http.post(
            "/api/bundles/support-bot/versions/2/transitions", json={"to": "staging"}, headers=editor
        ).raise_for_status()
        response = http.post(
            "/api/bundles/support-bot/experiments",
            json={
                "name": "shorter-answers",
                "arms": [
                    {"name": "control", "version": 1, "weight": 50},
                    {"name": "treatment", "version": 2, "weight": 50},
                ],
                "primary_metric": "thumbs_up",
                "guardrails": GUARDRAILS,
            },
            headers=editor,
        )
        response.raise_for_status()
        experiment = response.json()
    return Setup(runtime, experiment["id"], experiment["seed"], "support-bot@1", "support-bot@2", editor)


def start_experiment(server: Server, setup: Setup) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        http.post(f"/api/experiments/{setup.experiment_id}/start", headers=setup.editor).raise_for_status()


# --------------------------------------------------------------------------- synthetic traffic


@dataclass(frozen=True)
class Behaviour:
    """How one arm's traffic looks."""

    latency_median: float = 900.0
    error_rate: float = 0.010
    thumbs_up: float = 0.60
    completion_scale: float = 1.0


BEHAVIOUR = {
    None: Behaviour(),  # pre-period on production
    "control": Behaviour(),
    "baseline": Behaviour(),
    "treatment": Behaviour(latency_median=870.0, error_rate=0.011, thumbs_up=0.62, completion_scale=0.8),
    "candidate": Behaviour(latency_median=930.0, error_rate=0.012, thumbs_up=0.61, completion_scale=0.9),
}


@dataclass
class Scope:
    label: str
    experiment_id: str | None  # an experiment id, a rollout id, or None (traffic outside experiments)
    step: int | None
    versions: dict[str | None, str]  # arm → version id that serves it
    assign: Callable[[str], str | None]  # subject → arm
    events: int
    subjects: int
    outcome_share: float
    days: float
    end: datetime
    loaded: dict[str, float] = field(default_factory=dict)


def spread(events: int, units: int, rng: random.Random) -> list[int]:
    """Requests per subject: each ≥ 1, uniform around the mean (1–19 for a mean of 10), summing to events."""
    if events < units:
        raise SystemExit(f"{events} events cannot cover {units} subjects")
    mean = events / units
    high = max(1, round(2 * mean - 1))
    counts = [rng.randint(1, high) for _ in range(units)]
    diff = events - sum(counts)
    while diff != 0:
        i = rng.randrange(units)
        if diff > 0 and counts[i] < high:
            counts[i] += 1
            diff -= 1
        elif diff < 0 and counts[i] > 1:
            counts[i] -= 1
            diff += 1
    return counts


def subject_name(i: int) -> str:
    return f"user-{i:07d}"


def subject_traits(i: int) -> tuple[float, float]:
    """A stable per-subject (thumbs-up offset, latency multiplier): what CUPED can explain."""
    rng = random.Random(i * 7919 + 13)
    return rng.uniform(-0.25, 0.25), rng.lognormvariate(0, 0.25)


def generate(scope: Scope, rng: random.Random) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(chat event row with every column, thumbs_up outcome row or None), in time order."""
    counts = spread(scope.events, scope.subjects, rng)
    order = [i for i, n in enumerate(counts) for _ in range(n)]
    rng.shuffle(order)  # subjects come back over the whole period, interleaved
    names = [subject_name(i) for i in range(scope.subjects)]
    arms = [scope.assign(name) for name in names]
    traits = [subject_traits(i) for i in range(scope.subjects)]
    start = scope.end - timedelta(days=scope.days)
    tick = timedelta(days=scope.days) / max(scope.events, 1)
    for n, i in enumerate(order):
        arm = arms[i]
        b = BEHAVIOUR[arm]
        happiness, slowness = traits[i]
        created = start + tick * n
        error = rng.random() < b.error_rate
        stream = rng.random() < 0.5
        latency = rng.lognormvariate(math.log(b.latency_median * slowness), 0.45)
        prompt = rng.randint(300, 1500)
        completion = 0 if error else int(rng.randint(20, 600) * b.completion_scale)
        row = {
            "request_id": f"chatcmpl-{rng.getrandbits(96):024x}",
            "bundle": "support-bot",
            "version_id": scope.versions[arm],
            "assigned_version_id": scope.versions[arm],
            "experiment_id": scope.experiment_id,
            "arm": arm,
            "step": scope.step,
            "subject": names[i],
            "sticky": True,
            "source": "gateway",
            "stream": stream,
            "status": "error" if error else "ok",
            "error": rng.choice(("upstream timeout", "rate limited", "upstream 500")) if error else None,
            "http_status": rng.choice((504, 429, 502)) if error else 200,
            "latency_ms": latency if not error else latency * 0.4,
            "ttft_ms": latency * rng.uniform(0.15, 0.4) if stream and not error else None,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cost": prompt * 0.15e-6 + completion * 0.6e-6,
            "created_at": created,
        }
        outcome = None
        if not error and rng.random() < scope.outcome_share:
            later = created + timedelta(seconds=rng.uniform(2, 120))
            outcome = {
                "request_id": row["request_id"],
                "version_id": row["version_id"],
                "experiment_id": row["experiment_id"],
                "subject": row["subject"],
                "name": "thumbs_up",
                "value": 1.0 if rng.random() < min(max(b.thumbs_up + happiness, 0.0), 1.0) else 0.0,
                "comment": "",
                "created_at": later,
                "updated_at": later,
            }
        yield row, outcome


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


_outcome_table = Outcome.__table__  # type: ignore[attr-defined]
_outcome_insert = pg_insert(_outcome_table)
UPSERT_OUTCOMES = _outcome_insert.on_conflict_do_update(
    index_elements=["request_id", "name"],  # exactly repository.upsert_outcome's conflict rule
    set_={
        "value": _outcome_insert.excluded.value,
        "comment": _outcome_insert.excluded.comment,
        "updated_at": _outcome_insert.excluded.updated_at,
    },
)


def store_batch(engine: Engine, batch: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> int:
    """One batch as chatver stores it: events + their aggregates in one transaction, then outcomes."""
    rows = [row for row, _ in batch]
    outcomes = [outcome for _, outcome in batch if outcome is not None]
    with write_session(engine) as session, session.begin():
        repository.add_events(session, rows)  # as EventWriter._store
        subjects.add_event_aggregates(session, rows)
        if outcomes:
            # POST /api/feedback per request does upsert_outcome + add_outcome(scope, name, 1, value);
            # batched here: the outcome rows in one statement, and each unit's (n, total) added once.
            session.execute(UPSERT_OUTCOMES, outcomes)
            sums: dict[tuple[Any, ...], list[float]] = {}
            for row, outcome in batch:
                if outcome is None:
                    continue
                scope = _unit_scope(SimpleNamespace(**row))  # type: ignore[arg-type]
                assert scope is not None
                entry = sums.setdefault((*scope, outcome["name"]), [0, 0.0])
                entry[0] += 1
                entry[1] += outcome["value"]
            subjects._increment(  # the upsert add_outcome runs, for many units at once
                session,
                SubjectOutcome,
                subjects.OUTCOME_KEY,
                ("n", "total"),
                [
                    dict(zip(subjects.OUTCOME_KEY, key, strict=True), n=int(n), total=total)
                    for key, (n, total) in sums.items()
                ],
            )
    return len(outcomes)


def load(engine: Engine, scope: Scope, batch_size: int, rng: random.Random) -> None:
    missing = set(repository.EVENT_COLUMNS) ^ set(next(generate(_tiny(scope), random.Random(0)))[0])
    if missing:
        raise SystemExit(f"chat_event columns changed; update the generator: {sorted(missing)}")
    log(f"loading {scope.label}: {scope.events:,} events over {scope.subjects:,} subjects")
    started = last = time.monotonic()
    done = outcomes = 0
    for batch in _batches(generate(scope, rng), batch_size):
        outcomes += store_batch(engine, batch)
        done += len(batch)
        now = time.monotonic()
        if now - last >= 5 or done == scope.events:
            last = now
            rate = done / (now - started)
            eta = (scope.events - done) / rate if rate else 0
            log(f"  {scope.label}: {done:,}/{scope.events:,} events, {rate:,.0f} events/s, ETA {eta:,.0f}s")
    seconds = time.monotonic() - started
    scope.loaded = {"seconds": seconds, "outcomes": outcomes, "rate": scope.events / seconds}


def _tiny(scope: Scope) -> Scope:
    return Scope(**{**scope.__dict__, "events": 1, "subjects": 1, "loaded": {}})


# --------------------------------------------------------------------------- measurements


@dataclass
class Timing:
    samples: list[float]

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def cells(self) -> str:
        return f"{self.min * 1000:,.1f} | {self.median * 1000:,.1f} | {self.max * 1000:,.1f}"


def timed(work: Callable[[], Any], rounds: int) -> tuple[Timing, Any]:
    samples, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = work()
        samples.append(time.perf_counter() - started)
    return Timing(samples), result


@contextmanager
def capture_sql(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def explain(engine: Engine, statements: list[tuple[str, Any]]) -> list[str]:
    plans = []
    with engine.connect() as conn:
        for statement, parameters in statements:
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
            plans.append(statement.strip() + "\n\n" + "\n".join(row[0] for row in rows))
    return plans


def count_rows(engine: Engine, model: Any, scope_id: str) -> int:
    with read_session(engine) as session:
        query = sa_select(func.count()).select_from(model).where(model.experiment_id == scope_id)
        return int(session.execute(query).scalar_one())


def rollout_object(rollout_id: str, bundle_id: int) -> Rollout:
    """A rollout at its 50% step as step_evidence reads it; never stored (the experiment holds the bundle)."""
    return Rollout(
        id=rollout_id,
        bundle_id=bundle_id,
        version=2,
        baseline=1,
        steps=ROLLOUT_STEPS,
        step=ROLLOUT_STEP,
        min_requests_per_step=1000,
        guardrails=GUARDRAILS,
        created_by="bench",
    )


def rollout_assign(rollout_id: str) -> Callable[[str], str | None]:
    """The resolver's split of a rollout step: candidate takes [0, percent) of the rollout's hash."""
    percent = float(ROLLOUT_STEPS[ROLLOUT_STEP])
    arms = (Arm("candidate", percent), Arm("baseline", max(100.0 - percent, 1e-9)))

    def assign(subject: str) -> str | None:
        return arms[assign_arm(arms=arms, seed=rollout_id, subject=subject)[0]].name

    return assign


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="experiment events")
    parser.add_argument("--subjects", type=int, default=100_000, help="experiment subjects")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of each measurement (≥ 5)")
    parser.add_argument("--batch", type=int, default=5000, help="events per write transaction")
    parser.add_argument(
        "--pre-period-share",
        type=float,
        default=0.5,
        help="share of subjects with pre-period traffic on production (1 to 5 requests each)",
    )
    parser.add_argument(
        "--rollouts",
        default="10000/10000,100000/10000,1000000/10000,1000000/100000",
        help="rollout steps to load and check, as EVENTS/SUBJECTS pairs ('' for none)",
    )
    parser.add_argument("--postgres-url", help="use this PostgreSQL server (a scratch database is created)")
    parser.add_argument("--keep", action="store_true", help="leave PostgreSQL and the data in place")
    parser.add_argument(
        "--explain-ms", type=float, default=250.0, help="EXPLAIN ANALYZE queries slower than this"
    )
    parser.add_argument(
        "--timeout", type=int, default=3600, help="give up (and clean up) after this many seconds"
    )
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args()
    if args.rounds < 5:
        parser.error("--rounds must be at least 5")
    try:
        pairs = [pair.split("/") for pair in args.rollouts.split(",") if pair.strip()]
        if any(len(p) != 2 or int(p[0]) < int(p[1]) or int(p[1]) < 1 for p in pairs):
            raise ValueError
    except ValueError:
        parser.error("--rollouts: EVENTS/SUBJECTS pairs with EVENTS >= SUBJECTS >= 1, e.g. 10000/10000")
    return args


def _on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(f"stopped by signal {signal.Signals(signum).name}; cleaning up")


def _on_alarm(_signum: int, _frame: Any) -> None:
    raise TimeoutError("--timeout reached; cleaning up")


def machine_facts(engine: Engine) -> list[tuple[str, str]]:
    cpu = "?"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar_one()
        settings = {
            name: conn.execute(text(f"SHOW {name}")).scalar_one()
            for name in (
                "shared_buffers",
                "work_mem",
                "max_parallel_workers_per_gather",
                "fsync",
                "synchronous_commit",
            )
        }
    return [
        ("nproc", str(os.cpu_count())),
        ("CPU", cpu),
        ("memory", memory),
        ("kernel", platform.release()),
        ("Python", platform.python_version()),
        ("PostgreSQL", str(version)),
        ("PostgreSQL settings", ", ".join(f"{k}={v}" for k, v in settings.items())),
    ]


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(args.timeout)
    rng = random.Random(args.seed)
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="chatver-results-scale-"))
        workdir.chmod(0o755)  # the postgres user must reach its data dir inside
        if not args.keep:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        if args.postgres_url:
            database_url = stack.enter_context(scratch_database(args.postgres_url, args.keep))
        else:
            postgres = Postgres(workdir)
            if args.keep:
                log(
                    f"--keep: PostgreSQL stays up; stop it with: runuser -u postgres -- "
                    f"{postgres.bin / 'pg_ctl'} -D {postgres.data} stop && rm -rf {workdir}"
                )
            else:
                stack.callback(postgres.stop)
            log("starting PostgreSQL")
            database_url = postgres.start()
        log(f"database: {database_url}")
        started = time.monotonic()
        upgrade_database(database_url)
        log(f"migrated in {time.monotonic() - started:.1f}s")
        server = start_chatver(workdir, database_url)
        stack.callback(stop_process, server.process)
        log(f"chatver serve on {server.url}")
        setup = create_experiment(server)
        engine = create_db_engine(database_url)
        stack.callback(engine.dispose)
        report(args, rng, server, setup, engine)
    return 0


def report(
    args: argparse.Namespace, rng: random.Random, server: Server, setup: Setup, engine: Engine
) -> None:
    now = datetime.now(UTC)
    exp_arms = (Arm("control", 50), Arm("treatment", 50))

    def exp_assign(subject: str) -> str | None:
        return exp_arms[assign_arm(arms=exp_arms, seed=setup.experiment_seed, subject=subject)[0]].name

    pre_subjects = int(args.subjects * args.pre_period_share)
    scopes: list[Scope] = []
    if pre_subjects:
        pre = Scope(
            "pre-period (production, no experiment)",
            None,
            None,
            {None: setup.control},
            lambda _s: None,
            pre_subjects * 3,
            pre_subjects,
            0.3,
            28,
            now - timedelta(days=14),
        )
        load(engine, pre, args.batch, rng)
        scopes.append(pre)
    start_experiment(server, setup)  # copies the pre-period of every subject on production
    experiment = Scope(
        f"experiment {setup.experiment_id}",
        setup.experiment_id,
        None,
        {"control": setup.control, "treatment": setup.treatment},
        exp_assign,
        args.events,
        args.subjects,
        0.3,
        14,
        now,
    )
    load(engine, experiment, args.batch, rng)
    scopes.append(experiment)
    rollouts: list[tuple[Scope, str]] = []
    sizes = [tuple(int(x) for x in pair.split("/")) for pair in args.rollouts.split(",") if pair.strip()]
    for events, units in sizes:
        rollout_id = "ro_" + uuid.UUID(int=rng.getrandbits(128)).hex[:16]
        scope = Scope(
            f"rollout {rollout_id} step {ROLLOUT_STEP}",
            rollout_id,
            ROLLOUT_STEP,
            {"candidate": setup.treatment, "baseline": setup.control},
            rollout_assign(rollout_id),
            events,
            units,
            0.3,
            2,
            now,
        )
        load(engine, scope, args.batch, rng)
        scopes.append(scope)
        rollouts.append((scope, rollout_id))

    log("ANALYZE")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
        stats = {
            row.relname: row
            for row in conn.execute(
                text(
                    "SELECT relname, n_live_tup, n_dead_tup, pg_total_relation_size(relid) AS bytes "
                    "FROM pg_stat_user_tables WHERE relname IN "
                    "('chat_event','outcome','subject_aggregate','subject_outcome','metric_histogram')"
                )
            )
        }
    facts = machine_facts(engine)

    # --- results over HTTP
    log("timing GET /results over HTTP")
    path = f"/api/experiments/{setup.experiment_id}/results"
    with httpx.Client(base_url=server.url, timeout=120, headers=setup.runtime) as http:
        started = time.perf_counter()
        first = http.get(path)
        cold = time.perf_counter() - started
        first.raise_for_status()

        def get() -> dict[str, Any]:
            response = http.get(path)
            response.raise_for_status()
            return dict(response.json())

        http_timing, body = timed(get, args.rounds)
    arm_subjects = {arm["name"]: arm["subjects"] for arm in body["arms"]}
    arm_requests = {arm["name"]: arm["requests"] for arm in body["arms"]}
    checks = [
        ("Σ arm subjects", sum(arm_subjects.values()), args.subjects),
        ("Σ arm requests", sum(arm_requests.values()), args.events),
    ]

    # --- the same call in-process, split per query
    log("timing experiment_results in-process, per query")
    with read_session(engine) as session:
        exp = session.get(Experiment, setup.experiment_id)
        assert exp is not None
        bundle = session.get(Bundle, exp.bundle_id)
        assert bundle is not None
        session.expunge_all()
    eid = setup.experiment_id
    arm_versions = {"control": setup.control, "treatment": setup.treatment}
    parts: list[tuple[str, Callable[[Any], Any]]] = [
        ("arm_sums (per-unit sums ⟕ pre-period)", lambda s: subjects.arm_sums(s, eid)),
        ("outcome_sums (2 queries)", lambda s: subjects.outcome_sums(s, eid)),
        ("histograms", lambda s: subjects.histograms(s, eid)),
        ("units_by_assigned_arm (SRM)", lambda s: subjects.units_by_assigned_arm(s, eid)),
        ("assignment_counts (SRM)", lambda s: subjects.assignment_counts(s, eid)),
        ("crossover_units (crossover)", lambda s: subjects.crossover_units(s, eid, arm_versions)),
        ("experiment_results (all of the above + stats)", lambda s: _results(s, eid)),
    ]
    part_rows: list[tuple[str, Timing, int]] = []
    slow: list[tuple[str, list[tuple[str, Any]]]] = []
    for label, work in parts:
        with read_session(engine) as session:
            with capture_sql(engine) as statements:
                work(session)
            timing, _ = timed(lambda w=work, s=session: w(s), args.rounds)
        part_rows.append((label, timing, len(statements)))
        if timing.median * 1000 > args.explain_ms and not label.startswith("experiment_results"):
            slow.append((label, statements))

    # --- the old code's peer: raw events
    log("timing the raw-event peer queries")

    def raw_latencies() -> int:
        with engine.connect() as conn:
            values = (
                conn.execute(text("SELECT latency_ms FROM chat_event WHERE experiment_id = :id"), {"id": eid})
                .scalars()
                .all()
            )
            return len([v for v in values if v is not None])

    def raw_distinct() -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT COUNT(DISTINCT subject) FROM chat_event WHERE experiment_id = :id"),
                    {"id": eid},
                ).scalar_one()
            )

    def old_results_queries() -> int:
        with read_session(engine) as session:
            n = 0
            for version in (setup.control, setup.treatment):
                n += repository.experiment_arm_totals(session, eid, version)["requests"]
                repository.latencies(session, version, None, experiment_id=eid)
                repository.outcome_stats(session, version, None, experiment_id=eid)
            return n

    lat_timing, lat_rows = timed(raw_latencies, args.rounds)
    distinct_timing, distinct_subjects = timed(raw_distinct, args.rounds)
    both_timing = Timing([a + b for a, b in zip(lat_timing.samples, distinct_timing.samples, strict=True)])
    old_timing, old_requests = timed(old_results_queries, args.rounds)

    # --- guardrail check of one rollout step
    log("timing rollout step_evidence")
    guard_rows = []
    for scope, rollout_id in rollouts:
        rollout = rollout_object(rollout_id, bundle.id or 0)
        with read_session(engine) as session:
            timing, evidence = timed(lambda r=rollout, s=session: step_evidence(s, r, bundle), args.rounds)
        guard_rows.append(
            (
                scope,
                count_rows(engine, SubjectAggregate, rollout_id),
                count_rows(engine, MetricHistogram, rollout_id),
                timing,
                evidence,
            )
        )

    # --- tables
    out = print
    out(f"\n### Run\n\n`{' '.join(['.venv/bin/python', 'scripts/bench/results_scale.py', *sys.argv[1:]])}`\n")
    out("| fact | value |\n|---|---|")
    for name, value in facts:
        out(f"| {name} | {value} |")
    out(f"| chatver | `chatver serve` (1 worker) on {server.url}, pool via create_db_engine |")

    out("\n### Load (repository.add_events + subject_repository.add_event_aggregates per transaction)\n")
    out(
        f"batches of {args.batch:,} events; outcomes: bulk upsert into outcome + per-unit "
        "subject_outcome sums\n"
    )
    out("| scope | events | subjects | thumbs_up outcomes | seconds | events/s |")
    out("|---|---:|---:|---:|---:|---:|")
    total_events = total_seconds = 0.0
    for scope in scopes:
        total_events += scope.events
        total_seconds += scope.loaded["seconds"]
        out(
            f"| {scope.label} | {scope.events:,} | {scope.subjects:,} | {int(scope.loaded['outcomes']):,} | "
            f"{scope.loaded['seconds']:,.1f} | {scope.loaded['rate']:,.0f} |"
        )
    out(
        f"| **all** | {int(total_events):,} | | | {total_seconds:,.1f} | "
        f"{total_events / total_seconds:,.0f} |"
    )

    out("\n### Tables after ANALYZE\n")
    out("| table | live rows | dead rows | size (MB) |\n|---|---:|---:|---:|")
    for name in ("chat_event", "outcome", "subject_aggregate", "subject_outcome", "metric_histogram"):
        row = stats.get(name)
        if row is not None:
            out(f"| {name} | {row.n_live_tup:,} | {row.n_dead_tup:,} | {row.bytes / 1e6:,.1f} |")

    verdict = "✅" if http_timing.max <= TARGET_SECONDS else "❌"
    out(
        f"\n### GET /api/experiments/{{id}}/results — {args.events:,} events, {args.subjects:,} subjects "
        f"(target ≤ {TARGET_SECONDS:.0f} s: {verdict})\n"
    )
    out(f"first (cold) request: {cold * 1000:,.1f} ms; then {args.rounds} rounds:\n")
    out("| measurement | min ms | median ms | max ms | SQL statements |\n|---|---:|---:|---:|---:|")
    out(f"| GET /results over HTTP (keep-alive) | {http_timing.cells()} | |")
    for label, timing, n in part_rows:
        out(f"| in-process: {label} | {timing.cells()} | {n} |")
    out("\n| check | got | expected | ok |\n|---|---:|---:|---|")
    for name, got, expected in checks:
        out(f"| {name} | {got:,} | {expected:,} | {'✅' if got == expected else '❌'} |")
    out(f"| arms | {arm_subjects} | | |")
    out(f"| decision | {body['decision']} | | |")
    out("| guardrails | " + ", ".join(f"{g['metric']} {g['status']}" for g in body["guardrails"]) + " | | |")

    out("\n### Peer: the raw-event queries the old code ran (same run, same data)\n")
    out("| query | rows | min ms | median ms | max ms | results median ÷ this median |")
    out("|---|---:|---:|---:|---:|---:|")
    ratio_rows = [
        ("`SELECT latency_ms FROM chat_event WHERE experiment_id = …` into Python", lat_rows, lat_timing),
        (
            "`SELECT COUNT(DISTINCT subject) FROM chat_event WHERE experiment_id = …`",
            distinct_subjects,
            distinct_timing,
        ),
        ("both of the above", lat_rows, both_timing),
        (
            "old results path: experiment_arm_totals + latencies + outcome_stats, per arm",
            old_requests,
            old_timing,
        ),
    ]
    for label, rows, timing in ratio_rows:
        out(f"| {label} | {rows:,} | {timing.cells()} | {http_timing.median / timing.median:.3f} |")

    out(f"\n### Rollout guardrail check (rollouts.service.step_evidence, step {ROLLOUT_STEP}: 50 %)\n")
    out(
        "| events | subjects | subject_aggregate rows | histogram rows "
        "| min ms | median ms | max ms | checks |"
    )
    out("|---:|---:|---:|---:|---:|---:|---:|---|")
    for scope, agg_rows, hist_rows, timing, evidence in guard_rows:
        statuses = ", ".join(f"{c.metric} {c.status}" for c in evidence.checks)
        out(
            f"| {scope.events:,} | {scope.subjects:,} | {agg_rows:,} | {hist_rows:,} | "
            f"{timing.cells()} | {statuses} |"
        )

    if slow or verdict == "❌":
        out(f"\n### EXPLAIN (ANALYZE, BUFFERS) of the queries slower than {args.explain_ms:.0f} ms\n")
        if not slow:
            out("(none above the threshold: the time is in Python or in HTTP)")
        for label, statements in slow:
            for plan in explain(engine, statements):
                out(f"#### {label}\n\n```\n{plan}\n```\n")


def _results(session: Any, experiment_id: str) -> Any:
    experiment = session.get(Experiment, experiment_id)
    return results_module.experiment_results(session=session, experiment=experiment)


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        log("interrupted; cleaned up")
        raise SystemExit(130) from None
