"""``aebench-evidence``: run the protocol's experiments at a scale, resumably, then the analysis.

    aebench-evidence --experiments e01_static_regression,e07_induced_oscillation --scale cpu \\
        --out evidence/cpu [--launcher joblib --jobs 4] [--dry-run] [--no-analyze] [-- overrides]

For each experiment (``conf/experiment/eNN_*.yaml``; ``all`` = every one) it expands the
experiment's sweep (``hydra.sweeper.params`` plus the extra overrides, the way Hydra's basic
sweeper does), says how many jobs it has, how many are already done and how many are left, then
runs ``aebench -m experiment=<e> scale=<s> resume=true`` with every job in its own folder
``<out>/<e>/<overrides>-<digest>`` (:func:`aebench.identity.job_dir_name`) and all experiments in
one sweep folder ``<out>``, and prints a progress line (done / left / ETA) whenever a job ends.
Finally it runs ``aebench-analyze <out> --out <out>/report``.

Shared set point (issue 13): the experiments of :data:`SHARED_SET_POINT` (e09 batch size and its
Fashion-MNIST stratum, e10 loss scale) run in two stages. Stage 1, ``reference``: the reference
level alone (batch 256, 128 on Fashion-MNIST, loss scale 1; ``ablation=none
ae.gauge.target=calibrate``), one folder per seed,
``<out>/<e>-reference/seed<N>``. Stage 2, ``shared``: every level and ablation with
``ae.gauge.target=from_run ae.gauge.from_run=<out>/<e>-reference/seed{seed}``, so each level runs
with the set point its seed's reference calibrated (``extra.ae.gauge_set_point``), only for the
seeds whose reference record is final and has one (the others wait for a rerun, which resumes
stage 1 first). The per-run ``calibrate`` control is one sweep: pass ``ae.gauge.target=calibrate``
after ``--``.

Resumable: a job whose arm and seed already have a completed (or diverged) record anywhere under
``<out>`` is skipped (aebench/resume.py), a job killed midway reruns in its own folder over its
partial files, so after any number of interruptions and reruns each (arm, seed) has exactly one
record. Runs shared by two experiments (e.g. AE with every law in e01 and in e18) are run once.

The parent process imports no torch: it composes configs (Hydra's compose API) and polls the
records; the jobs run in an ``aebench`` subprocess whose output goes to ``<out>/logs/<e>.log``.
Exit status: 0 done; 1 a sweep failed or a job recorded status ``failed`` (the runs that
completed stay and are skipped on a rerun); 2 bad arguments (one line).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aebench.identity import SUBDIR_OVERRIDE, job_dir_name, job_identity
from aebench.paths import config_dir
from aebench.resume import FINAL, iter_records, read_identity
from aebench.validation import ConfigError

#: the experiment configs ``--experiments all`` runs: the protocol's, one per experiment
EXPERIMENT = re.compile(r"^e\d\d_\w+$")
#: ``--launcher`` name -> the ``hydra/launcher`` option (conf/hydra/launcher/ or the plugin's)
LAUNCHERS = {
    "basic": None,
    "joblib": "aebench_joblib",
    "slurm": "aebench_slurm",
    "submitit_local": "submitit_local",
}


#: experiments whose levels share one gauge set point (module doc): the reference level
SHARED_SET_POINT: dict[str, tuple[str, ...]] = {
    "e09_batch_size_sweep": ("task.batch_size=256",),
    # the real-data stratum's reference is its middle level, DeepOBS's batch 128
    "e09_batch_size_sweep_fmnist": ("task.batch_size=128",),
    "e10_gradient_scaling": ("task.loss_scale=1",),
}
#: what stage 1 fixes besides the level: the gauge on, calibrating its own set point
REFERENCE_FIXED = ("ablation=none", "ae.gauge.target=calibrate")
STAGES = ("", "reference", "shared")


@dataclass
class Job:
    """One job of an experiment's sweep: its overrides and its folder under ``--out``."""

    overrides: list[str]
    folder: str
    #: where a final record of its arm and seed already is (None: the job has to run)
    done_in: Path | None = None


@dataclass
class Plan:
    """An experiment's jobs and the command that runs them."""

    experiment: str
    jobs: list[Job]
    command: list[str]
    hydra_overrides: list[str] = field(default_factory=list)
    #: "" (one sweep), or the shared-set-point stage: "reference" (1) or "shared" (2)
    stage: str = ""
    #: seeds of a "shared" stage held back: their reference has no set point yet
    held: list[int] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.experiment} ({self.stage})" if self.stage else self.experiment

    @property
    def todo(self) -> list[Job]:
        return [j for j in self.jobs if j.done_in is None]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="aebench-evidence",
        description="Run the protocol's experiments at a scale (resumable), then the analysis. "
        "Overrides after -- go to every sweep (e.g. -- seed='range(3)' hydra.launcher.n_jobs=4).",
    )
    parser.add_argument(
        "--experiments", required=True, help="comma-separated experiment names, or all"
    )
    parser.add_argument("--scale", required=True, help="smoke, cpu or paper")
    parser.add_argument("--out", required=True, help="folder of the runs and the report")
    parser.add_argument(
        "--launcher",
        choices=tuple(LAUNCHERS),
        default="basic",
        help="basic: one job at a time; joblib: --jobs in parallel on this machine; slurm: a "
        "Slurm job array (hydra-submitit-launcher); submitit_local: submitit on this machine",
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="parallel jobs on this machine (implies joblib)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job")
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between progress checks")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    parser.add_argument("--no-analyze", action="store_true", help="skip aebench-analyze")
    parser.add_argument("--no-figures", action="store_true", help="aebench-analyze --no-figures")
    parser.add_argument(
        "--verbose", action="store_true", help="show the sweeps' output instead of logging it"
    )
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs={args.jobs}: at least 1")
    if args.jobs is not None and args.launcher == "basic":
        args.launcher = "joblib"  # parallel jobs on this machine are what --jobs asks for
    if args.jobs is not None and args.launcher != "joblib":
        parser.error(f"--jobs={args.jobs}: only with --launcher joblib")
    if args.threads < 1:
        parser.error(f"--threads={args.threads}: at least 1")
    if args.poll <= 0:
        parser.error(f"--poll={args.poll}: a positive number of seconds")
    args.extra = extra
    return args


# --------------------------------------------------------------------------- planning


def _quote(value: str) -> str:
    """A Hydra override value, quoted when it holds more than path characters (``=``, ``,``
    or spaces would end or split it)."""
    if re.fullmatch(r"[\w./-]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Composer:
    """Hydra's compose API over the suite's config tree (one initialisation for the session)."""

    def __init__(self) -> None:
        from hydra import initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra

        from aebench.schema import register_configs

        register_configs()
        GlobalHydra.instance().clear()
        self._ctx = initialize_config_dir(str(config_dir()), version_base="1.3")
        self._ctx.__enter__()
        self.loader = GlobalHydra.instance().config_loader()
        self._identities: dict[tuple[str, ...], tuple[str, int]] = {}

    def close(self) -> None:
        self._ctx.__exit__(None, None, None)

    def compose(self, overrides: list[str]):  # noqa: ANN201 - a DictConfig with its hydra node
        from hydra import compose

        return compose("config", overrides=overrides, return_hydra_config=True)

    def identity(self, overrides: list[str]) -> tuple[str, int]:
        """``(arm, seed)`` of the job ``overrides`` (composed once, then cached)."""
        key = tuple(overrides)
        if key not in self._identities:
            from omegaconf import open_dict

            cfg = self.compose(list(overrides))
            choices = dict(cfg.hydra.runtime.choices)
            with open_dict(cfg):
                del cfg["hydra"]
            ident = job_identity(cfg, choices)
            self._identities[key] = (ident.arm, ident.seed)
        return self._identities[key]

    def experiments(self) -> list[str]:
        return sorted(self.loader.get_group_options("experiment"))

    def parse(self, overrides: list[str]) -> list:  # noqa: ANN001 - hydra Override objects
        from hydra.core.override_parser.overrides_parser import OverridesParser

        return OverridesParser.create(config_loader=self.loader).parse_overrides(overrides)


def select_experiments(spec: str, available: list[str]) -> list[str]:
    """The experiments named by ``--experiments`` (``all``: every ``eNN_*``), in order."""
    protocol = [e for e in available if EXPERIMENT.match(e)]
    if spec.strip() == "all":
        if not protocol:
            raise ConfigError(f"--experiments=all: no eNN_* config in {config_dir()}/experiment")
        return protocol
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--experiments={spec!r}: name at least one experiment, or all")
    for name in names:
        if name not in available:
            raise ConfigError(
                f"--experiments={name}: no such experiment; allowed: all, " + ", ".join(protocol)
            )
    return list(dict.fromkeys(names))


def expand(composer: Composer, experiment: str, arguments: list[str]) -> list[list[str]]:
    """Every job's overrides, as ``aebench -m experiment=<e> <arguments>`` would launch them
    (Hydra's basic sweeper: the experiment's ``hydra.sweeper.params`` first, then the command
    line, a key given twice taking the command line's value in the params' place)."""
    return expand_with_choices(composer, experiment, arguments)[0]


def expand_with_choices(
    composer: Composer, experiment: str, arguments: list[str]
) -> tuple[list[list[str]], dict[str, str | None]]:
    """:func:`expand`, and the group choices of the experiment before its sweep."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    fixed = [a for a in arguments if not any(o.is_sweep_override() for o in composer.parse([a]))]
    cfg = composer.compose(fixed)
    params = cfg.hydra.sweeper.params or {}
    if f"experiment={experiment}" not in fixed:
        raise ConfigError(f"experiment={experiment}: missing from the arguments")
    lines = [f"{k}={v}" for k, v in params.items()] + list(arguments)
    (jobs,) = BasicSweeper.split_arguments(composer.parse(lines), None)
    return jobs, dict(cfg.hydra.runtime.choices)


def record_index(out: Path) -> dict[tuple[str, int], Path]:
    """``(arm, seed) -> result.json`` of every final record under ``out`` (with its curves)."""
    index: dict[tuple[str, int], Path] = {}
    if not out.is_dir():
        return index
    for path in iter_records(out):
        arm, seed, status = read_identity(path)
        if arm and seed is not None and status in FINAL and (path.parent / "curves.csv").is_file():
            index.setdefault((arm, seed), path)
    return index


def _final_here(folder: Path) -> bool:
    path = folder / "result.json"
    if not path.is_file() or not (folder / "curves.csv").is_file():
        return False
    return read_identity(path)[2] in FINAL


def _seed_of(overrides: list[str]) -> int | None:
    """The seed a job's overrides set (the last ``seed=``), or None when they set none."""
    seeds = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == "seed"]
    try:
        return int(seeds[-1]) if seeds else None
    except ValueError:
        return None


def _arm_prefix(overrides: list[str], base: dict[str, str | None]) -> str:
    """The readable part of the arm id a job's group overrides suggest (``aebench.record.arm_id``
    without the hash). A guess: ``ae.laws.*`` or ``ae.enabled`` overrides are not read, so it
    can miss a match (the count then says "to run" and the sweep skips the job); never a job."""
    choices = dict(base)
    for o in overrides:
        key, _, value = o.partition("=")
        if key in choices:
            choices[key] = value
    ae = "noae" if choices.get("ae") in (None, "off") else "ae"  # on, canonical, meta: AE
    ablation = choices.get("ablation") or "none"
    parts = [choices.get("task"), choices.get("optimizer"), choices.get("schedule"), ae]
    parts += [ablation, f"swarm-{choices.get('swarm')}", choices.get("scale")]
    return "-".join(str(p) for p in parts)


def mark_done(
    composer: Composer,
    jobs: list[Job],
    out: Path,
    index: dict[tuple[str, int], Path],
    base: dict[str, str | None],
) -> None:
    """Set ``done_in`` for jobs with a final record: in their own folder (by its name), or, by
    arm and seed, anywhere under ``out`` (composing the job's config, 0.1-0.5 s a job, only for
    jobs whose seed and group choices match some record there: :func:`_arm_prefix`)."""
    known = {(arm.rsplit("-", 1)[0], seed) for arm, seed in index}
    for job in jobs:
        if _final_here(out / job.folder):
            job.done_in = out / job.folder
            continue
        seed = _seed_of(job.overrides)
        if not index or seed is not None and (_arm_prefix(job.overrides, base), seed) not in known:
            continue  # no record of this arm and seed anywhere: nothing to compose for
        hit = index.get(composer.identity(job.overrides))
        if hit is not None:
            job.done_in = hit.parent


def _okey(o: str) -> str:
    return o.split("=", 1)[0].lstrip("+~")


def staged(experiment: str, extra: list[str]) -> bool:
    """Whether ``experiment`` runs in two stages: it shares a set point and the extra overrides
    do not choose the gauge's target themselves (``ae.gauge.target=calibrate``: the control)."""
    return experiment in SHARED_SET_POINT and not any(_okey(o) == "ae.gauge.target" for o in extra)


def reference_dir(out: Path, experiment: str) -> Path:
    """Stage 1's sweep folder; seed N's record is ``<it>/seed<N>/result.json``."""
    return out / f"{experiment}-reference"


def from_run_template(out: Path, experiment: str) -> str:
    """The ``ae.gauge.from_run`` of stage 2 (``{seed}``: each job's own seed)."""
    return str(reference_dir(out, experiment) / "seed{seed}")


def reference_set_point(out: Path, experiment: str, seed: int) -> list[float] | None:
    """The set points seed ``seed``'s reference recorded, None while it has no final record with
    a positive value per param group."""
    import json

    folder = reference_dir(out, experiment) / f"seed{seed}"
    if not _final_here(folder):
        return None
    try:
        rec = json.loads((folder / "result.json").read_text())
    except (OSError, ValueError):
        return None
    points = ((rec.get("extra") or {}).get("ae") or {}).get("gauge_set_point")
    ok = (
        isinstance(points, list)
        and points
        and all(isinstance(x, int | float) and not isinstance(x, bool) and x > 0 for x in points)
    )
    return [float(x) for x in points] if ok else None


def plans_for(
    composer: Composer, experiment: str, args: argparse.Namespace, out: Path
) -> list[Plan]:
    """The plans of one experiment, in the order they run: its sweep, or its two stages."""
    if not staged(experiment, args.extra):
        return [plan(composer, experiment, args, out)]
    return [plan(composer, experiment, args, out, s) for s in ("reference", "shared")]


def plan(
    composer: Composer,
    experiment: str,
    args: argparse.Namespace,
    out: Path,
    stage: str = "",
    hold: bool = False,
) -> Plan:
    """The jobs of ``experiment`` (which are done already) and the ``aebench`` command; with
    ``stage``, the jobs of that stage of a shared set point (module doc). ``hold``: a shared
    stage keeps only the seeds whose reference has a set point (the others in ``held``)."""
    if stage not in STAGES:
        raise ConfigError(f"stage={stage!r}: allowed: reference, shared (or none)")
    parsed = composer.parse(args.extra)
    hydra_extra = [o.input_line for o in parsed if o.is_hydra_override()]
    task_extra = [o.input_line for o in parsed if not o.is_hydra_override()]
    arguments = [
        f"experiment={experiment}",
        f"scale={args.scale}",
        "resume=true",
        f"trainer.threads={args.threads}",
        *task_extra,
    ]
    launcher = []
    if LAUNCHERS[args.launcher]:
        launcher.append(f"hydra/launcher={LAUNCHERS[args.launcher]}")
    if args.jobs is not None:
        launcher.append(f"hydra.launcher.n_jobs={args.jobs}")
    sweep_dir, subdir = out, SUBDIR_OVERRIDE
    if stage == "reference":
        fixed = [*SHARED_SET_POINT[experiment], *REFERENCE_FIXED]
        keys = {_okey(o) for o in fixed}
        arguments = [a for a in arguments if _okey(a) not in keys] + fixed
        sweep_dir, subdir = reference_dir(out, experiment), "hydra.sweep.subdir='seed${seed}'"
    elif stage == "shared":
        template = from_run_template(out, experiment)
        arguments += ["ae.gauge.target=from_run", f"ae.gauge.from_run={_quote(template)}"]
    hydra_args = [f"hydra.sweep.dir={_quote(str(sweep_dir))}", subdir, *launcher, *hydra_extra]
    overrides, base = expand_with_choices(composer, experiment, arguments)
    held: list[int] = []
    if stage == "reference":
        jobs = [
            Job(o, f"{reference_dir(out, experiment).name}/seed{_seed_of(o)}") for o in overrides
        ]
        if len({j.folder for j in jobs}) < len(jobs):
            raise ConfigError(
                f"{experiment}: the reference level must be one job per seed (sweep only the "
                "seed), or pass ae.gauge.target=calibrate for the per-run control"
            )
        for job in jobs:  # by its own folder only: that is where stage 2 reads the set point
            if _final_here(out / job.folder):
                job.done_in = out / job.folder
    else:
        if stage == "shared" and hold:  # run only the seeds whose reference is there
            seeds = sorted({s for s in map(_seed_of, overrides) if s is not None})
            held = [s for s in seeds if reference_set_point(out, experiment, s) is None]
            if held:
                ready = [s for s in seeds if s not in held]
                arguments = [a for a in arguments if _okey(a) != "seed"]
                arguments.append("seed=" + ",".join(map(str, ready or [-1])))
                overrides = (
                    [] if not ready else expand_with_choices(composer, experiment, arguments)[0]
                )
        jobs = [Job(o, job_dir_name(o)) for o in overrides]
        mark_done(composer, jobs, out, record_index(out), base)
    command = [sys.executable, "-m", "aebench", "-m", *arguments, *hydra_args]
    return Plan(experiment, jobs, command, hydra_args, stage, held)


# --------------------------------------------------------------------------- running


def _shell(arg: str) -> str:
    """``arg`` as a shell word, in double quotes where it holds single quotes (readable)."""
    if shlex.quote(arg) == arg:
        return arg
    if not any(c in arg for c in '"\\`!'):
        return '"' + arg.replace("$", "\\$") + '"'
    return shlex.quote(arg)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


@dataclass
class Progress:
    """Counts the jobs of a plan that ended since ``start`` (a record written after it)."""

    plan: Plan
    out: Path
    start: float
    parallel: int
    ended: dict[str, str] = field(default_factory=dict)
    #: when each ended job was first seen ended (the ETA's clock)
    times: list[float] = field(default_factory=list)

    def poll(self) -> bool:
        """Look at the records of the jobs still running; True when the count changed."""
        changed, now = False, time.time()
        for job in self.plan.todo:
            if job.folder in self.ended:
                continue
            path = self.out / job.folder / "result.json"
            try:
                if path.stat().st_mtime < self.start:
                    continue
            except OSError:
                continue
            status = read_identity(path)[2] or "unreadable"
            self.ended[job.folder] = status
            self.times.append(now)  # one time per poll: jobs seen ending together share it
            changed = True
        return changed

    def line(self, prior_wall: float | None) -> str:
        total, before = len(self.plan.jobs), len(self.plan.jobs) - len(self.plan.todo)
        done = before + len(self.ended)
        left = total - done
        elapsed = time.time() - self.start
        span = self.times[-1] - self.times[0] if self.times else 0.0
        if span > 0:  # the pace of the jobs ended since the first poll that saw one end:
            # start-up excluded, parallel jobs counted
            later = sum(1 for t in self.times if t > self.times[0])
            eta = span / later * left
        elif self.times:
            eta = elapsed / len(self.times) * left
        elif prior_wall is not None:
            eta = prior_wall * left / self.parallel
        else:
            eta = None
        failed = sum(1 for s in self.ended.values() if s == "failed")
        extra = f", {failed} failed" if failed else ""
        return (
            f"{self.plan.label}: {done}/{total} done{extra}, {left} left, "
            f"{_clock(elapsed)} elapsed, ETA {_clock(eta) if left else '0s'}"
        )


def _median_wall(jobs: list[Job]) -> float | None:
    """Median ``wall_s`` of the records of ``jobs`` that are done (for a first ETA)."""
    import json

    walls = []
    for job in jobs:
        if job.done_in is None:
            continue
        try:
            walls.append(float(json.loads((job.done_in / "result.json").read_text())["wall_s"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return statistics.median(walls) if walls else None


def _die_with_parent() -> None:
    """In the child: lead a process group of its own (its parallel launcher's workers join
    it, so :func:`_stop_sweep` can stop them all), and get SIGTERM when aebench-evidence dies
    (even by SIGKILL), so no orphaned sweep goes on writing records beside a rerun (the
    signal on Linux; elsewhere only the group)."""
    os.setpgid(0, 0)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Terminated(Exception):
    """aebench-evidence got SIGTERM (``kill``, a scheduler's time limit)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated(signum)


def _stop_sweep(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a sweep and every process of its group (a joblib launcher's loky workers would
    otherwise go on training, and writing records, after their sweep is gone): SIGTERM, then
    SIGKILL for what is left after ``grace`` seconds."""

    def signal_group(sig: int) -> bool:
        proc.poll()  # reap the leader: a zombie would keep its group alive
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    signal_group(signal.SIGTERM)
    deadline = time.time() + grace
    while time.time() < deadline and signal_group(0):
        time.sleep(0.1)
    signal_group(signal.SIGKILL)
    proc.wait()


def run_plan(
    p: Plan, out: Path, args: argparse.Namespace, say: Callable[[str], None]
) -> tuple[int, int]:
    """Run one experiment's sweep with progress lines; ``(exit status, failed jobs)``."""
    parallel = args.jobs or 1
    prior = _median_wall(p.jobs)
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{p.experiment}.log"
    start = time.time() - 1.0  # file times are coarser than the clock on some file systems
    progress = Progress(p, out, start, parallel)
    with open(log_path, "a") as log:
        log.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(p.command)}\n")
        log.flush()
        sink = None if args.verbose else log
        proc = subprocess.Popen(
            p.command,
            stdout=sink,
            stderr=subprocess.STDOUT if sink else None,
            env=env,
            preexec_fn=_die_with_parent if os.name == "posix" else None,
        )
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            while True:
                try:
                    rc = proc.wait(timeout=args.poll)
                except subprocess.TimeoutExpired:
                    rc = None
                if progress.poll():
                    say(progress.line(prior))
                if rc is not None:
                    break
        except (KeyboardInterrupt, _Terminated):
            # the sweep's group is its own (Ctrl-C reaches only this process): stop all of it
            say(f"{p.experiment}: interrupted; stopping its jobs (rerun to resume)")
            if os.name == "posix":
                _stop_sweep(proc)
            else:
                proc.terminate()
                proc.wait()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
    failed = sum(1 for s in progress.ended.values() if s == "failed")
    if rc != 0:
        say(f"{p.experiment}: the sweep exited with status {rc}; its log: {log_path}")
        if not args.verbose:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            say("\n".join("    " + t for t in tail))
    return rc, failed


def analyze(out: Path, no_figures: bool) -> int:
    """``aebench-analyze <out> --out <out>/report`` (in this process: the analysis is
    torch-free)."""
    from analysis.cli import main as analyze_main

    argv = [str(out), "--out", str(out / "report")]
    if no_figures:
        argv.append("--no-figures")
    return analyze_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()

    def say(text: str) -> None:
        print(text, flush=True)

    composer = Composer()
    try:
        try:
            experiments = select_experiments(args.experiments, composer.experiments())
            if args.scale not in composer.loader.get_group_options("scale"):
                options = ", ".join(composer.loader.get_group_options("scale"))
                raise ConfigError(f"--scale={args.scale}: no such scale; choose from: {options}")
            plans = [q for e in experiments for q in plans_for(composer, e, args, out)]
        except ConfigError as err:
            print(f"aebench-evidence: error: {err}", file=sys.stderr)
            return 2
        except Exception as err:  # noqa: BLE001 - a composition error: one line
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            print(f"aebench-evidence: error: {first}", file=sys.stderr)
            return 2
        for p in plans:
            done = len(p.jobs) - len(p.todo)
            say(f"{p.label}: {len(p.jobs)} jobs, {done} already done, {len(p.todo)} to run")
        total = sum(len(p.jobs) for p in plans)
        todo = sum(len(p.todo) for p in plans)
        n = len(dict.fromkeys(p.experiment for p in plans))
        say(f"all: {n} experiments, {total} jobs, {todo} to run, into {out}")
        if args.dry_run:
            for p in plans:
                say("  " + " ".join(_shell(a) for a in p.command[2:]))
            return 0
        status, failed = 0, 0
        for i, p in enumerate(plans):
            if i:  # runs of the plans before may have done some of this one's jobs, and a
                # shared stage reads the set points its reference stage just recorded
                p = plan(composer, p.experiment, args, out, p.stage, hold=True)
            if p.held:
                say(
                    f"{p.label}: seeds {','.join(map(str, p.held))} wait: their reference "
                    f"({reference_dir(out, p.experiment)}) has no set point yet; a rerun resumes"
                )
                status = 1
            if not p.todo:
                say(f"{p.label}: nothing to run")
                continue
            say(f"{p.label}: running {len(p.todo)} of {len(p.jobs)} jobs")
            try:
                from orchestration.tuning_stage import run_staged  # the tuning stage (issue 18)

                rc, n_failed = run_staged(composer, p, out, args, say)
            except (KeyboardInterrupt, _Terminated) as stop:
                say("interrupted: run the same command again to resume (done jobs are skipped)")
                return 143 if isinstance(stop, _Terminated) else 130
            failed += n_failed
            status = status or (1 if rc != 0 else 0)
    finally:
        composer.close()
    if failed:
        say(f"{failed} jobs recorded status failed (see report.md); a rerun retries them")
        status = status or 1
    if not args.no_analyze:
        rc = analyze(out, args.no_figures)
        status = status or (1 if rc not in (0,) else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
