"""Background kd-lens commands (demo build, distillation) that outlive the browser tab.

A job is ``python -m kdcore ... --progress-file FILE`` started detached (its own session,
output to a log file), described by a small JSON file in ``<runs>/.jobs/``. Any session,
now or after a restart of the page, finds it there and follows its progress file; the
job file is created exclusively, so two sessions cannot start the same job twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from kdcore.config import RunSpec
from kdcore.records import STAGE_LABELS, ProgressEvent
from kdcore.runs import resolve_run_path
from kdcore.utils import atomic_write_bytes

__all__ = ["Job", "JobError", "jobs_dir", "start_job", "list_jobs", "find_job", "read_events", "job_status",
           "stage_fraction", "STAGE_LABELS", "start_run_job", "SPECS"]

REPO_ROOT = Path(__file__).resolve().parents[1]
# The specs handed to background builds, beside the uploads they may read (under the runs folder).
SPECS = ".specs"


class JobError(ValueError):
    """A job cannot be started; the message says why."""


@dataclass
class Job:
    name: str           # the run it builds
    kind: str           # "demo" or "distill"
    pid: int
    started_at: float
    command: list
    progress_file: str
    log_file: str

    @property
    def path(self) -> Path:
        return Path(self.progress_file).with_suffix(".job.json")


def jobs_dir(runs_dir: Path) -> Path:
    return Path(runs_dir) / ".jobs"


def _alive(pid: int) -> bool:
    try:
        # Reap our own finished child (else it lingers as a zombie that looks alive).
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child (another server process started it): ask the kernel
    except OSError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_events(job: Job) -> list[dict]:
    """Progress events written so far (a half-written last line is skipped)."""
    path = Path(job.progress_file)
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def log_tail(job: Job, lines: int = 15) -> str:
    path = Path(job.log_file)
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def job_status(job: Job, events: list[dict] | None = None) -> tuple[str, str]:
    """("running" | "done" | "error", message)."""
    events = read_events(job) if events is None else events
    last = ProgressEvent.from_dict(events[-1]) if events else ProgressEvent(stage="")
    if last.stage == "done":
        return "done", str(last.path or "")
    if last.stage == "error":
        return "error", str(last.message or "unknown error")
    if _alive(job.pid):
        return "running", last.text
    tail = log_tail(job)
    return "error", f"The process stopped without finishing. Last lines of its log:\n{tail}" if tail else \
        "The process stopped without finishing (no log)."


def stage_fraction(events: list[dict]) -> float:
    """Rough share of the whole job done: the furthest any progress event got (a step that reports inside a
    later stage, such as the teacher's view of n-grams met in the evaluation, never moves the bar back)."""
    return max((ProgressEvent.from_dict(e).fraction for e in events), default=0.0)


def list_jobs(runs_dir: Path) -> list[Job]:
    folder = jobs_dir(runs_dir)
    if not folder.is_dir():
        return []
    jobs = []
    for path in folder.glob("*.job.json"):
        try:
            jobs.append(Job(**json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(jobs, key=lambda j: j.started_at, reverse=True)


def find_job(runs_dir: Path, name: str) -> Job | None:
    return next((j for j in list_jobs(runs_dir) if j.name == name), None)


def start_job(runs_dir: Path, kind: str, name: str, arguments: list[str],
              remove_after: Sequence[Path] = ()) -> Job:
    """Start ``python -m kdcore <arguments> --progress-file F`` detached; refuse a second
    live job for the same run name. The files in ``remove_after`` (an upload the job reads) are
    removed when the command ends, however it ends (see :func:`main`)."""
    runs_dir = Path(runs_dir)
    resolve_run_path(name, runs_dir)  # refuses names that could leave the runs folder
    folder = jobs_dir(runs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    progress_file = folder / f"{name}.progress.jsonl"
    log_file = folder / f"{name}.log"
    job_path = progress_file.with_suffix(".job.json")
    existing = find_job(runs_dir, name)
    if existing is not None:
        status, _ = job_status(existing)
        if status == "running":
            raise JobError(f"A job building run {name!r} is already running (pid {existing.pid}).")
        job_path.unlink(missing_ok=True)
    try:
        handle = os.open(job_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise JobError(f"Another session is starting a job for run {name!r}; wait a moment.") from None
    progress_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "kdcore", *arguments, "--runs-dir", str(runs_dir.resolve()),
               "--progress-file", str(progress_file.resolve())]
    if remove_after:
        command = [sys.executable, "-m", "dashboard.jobs", *(f"--remove-after={Path(f).resolve()}" for f in remove_after),
                   "--", *command[1:]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    job_file = os.fdopen(handle, "w", encoding="utf-8")
    try:
        with open(log_file, "wb") as log:
            process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        job = Job(name=name, kind=kind, pid=process.pid, started_at=time.time(), command=command,
                  progress_file=str(progress_file.resolve()), log_file=str(log_file.resolve()))
        with job_file:
            json.dump(asdict(job), job_file)
    except BaseException:
        job_file.close()
        job_path.unlink(missing_ok=True)
        raise
    return job


def start_run_job(runs_dir: Path, spec: RunSpec, remove_after: Sequence[Path] = ()) -> Job:
    """Write ``spec`` as JSON under ``<runs>/.specs/`` and start ``python -m kdcore distill --spec FILE``."""
    runs_dir = Path(runs_dir)
    resolve_run_path(spec.name, runs_dir)
    spec_file = runs_dir / SPECS / f"{spec.name}.json"
    atomic_write_bytes(spec_file, spec.to_json().encode("utf-8"))
    return start_job(runs_dir, "distill", spec.name, ["distill", "--spec", str(spec_file.resolve())],
                     remove_after=remove_after)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dashboard.jobs [--remove-after=FILE ...] -- PYTHON_ARGS...``: run ``python PYTHON_ARGS`` and
    remove the files when it ends (its exit status is returned; SIGTERM to the job's group ends both)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    options, command = argv[:split], argv[split + 1:]
    remove = [Path(o.split("=", 1)[1]) for o in options if o.startswith("--remove-after=")]
    if not command:
        print("usage: python -m dashboard.jobs [--remove-after=FILE ...] -- PYTHON_ARGS...", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # so that `finally` runs
    try:
        return subprocess.call([sys.executable, *command])
    finally:
        for path in remove:
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    raise SystemExit(main())
