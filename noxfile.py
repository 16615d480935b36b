"""Automation for bidi-core and its provider plugins. See ``nox -l`` (or ``./dev nox -l``).

Every test session installs the packages from built wheels (not editable), so the
tests prove entry points, ``py.typed`` and package data survive packaging. Each
plugin's tests run in an environment holding only bidi-core and that plugin.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.needs_version = ">=2025.02.09"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests", "plugin_tests", "readme_install"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
TEST_DEPS = nox.project.dependency_groups(PYPROJECT, "test")
LINT_DEPS = nox.project.dependency_groups(PYPROJECT, "lint")
TYPECHECK_DEPS = nox.project.dependency_groups(PYPROJECT, "typecheck")
PYTHON = "3.12"  # the minimum; ./dev passes --force-python with the interpreter it found
PLUGINS = sorted(
    p.name
    for p in Path("plugins").glob("*")
    if (p / "pyproject.toml").is_file() and not p.name.startswith("_")
)
PLUGIN_PACKAGES = {p: "plugins/" + p + "/" + p.replace("-", "_") for p in PLUGINS}


#: The suites run once per JSON/base64 path (bidi_core._fastcodec): "fast" with the
#: bidi-core[fast] libraries, "stdlib" with BIDI_NO_FAST=1. BIDI_CODECS=fast (or
#: stdlib) runs one of them, for a quicker loop.
CODECS = [c for c in os.environ.get("BIDI_CODECS", "fast,stdlib").split(",") if c]


def run_per_codec(session: nox.Session, *args: str) -> None:
    """Run pytest with *args* once per entry of CODECS."""
    for codec in CODECS:
        env = {"BIDI_NO_FAST": "1" if codec == "stdlib" else "0"}
        session.log(f"JSON/base64 path: {codec}")
        session.run("pytest", *args, env=env)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the core test suite against bidi-core installed from its wheel, twice: with
    the fast JSON/base64 path (the fast extra) and with the stdlib one (BIDI_NO_FAST=1).

    The test group brings the serve extra's packages and Playwright (the browser tests
    drive Debian's Chromium, never a downloaded one: ``BIDI_REQUIRE_BROWSER=1`` makes a
    missing Chromium a failure instead of a skip, as in CI).
    """
    session.install(*TEST_DEPS, ".[serve,fast]")
    run_per_codec(session, *session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("plugin", PLUGINS, ids=PLUGINS)
def plugin_tests(session: nox.Session, plugin: str) -> None:
    """Run one plugin's tests in an env holding only bidi-core and that plugin (wheels),
    with the fast JSON/base64 path and with the stdlib one."""
    session.install(*TEST_DEPS, ".[fast]", f"./plugins/{plugin}[test]")
    run_per_codec(
        session,
        "-c",
        f"plugins/{plugin}/pyproject.toml",
        "--rootdir",
        f"plugins/{plugin}",
        f"plugins/{plugin}/tests",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install(*LINT_DEPS)
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Run mypy --strict over the core and every plugin package."""
    editable = ["-e", ".[fast]"]
    for plugin in PLUGINS:
        editable += ["-e", f"./plugins/{plugin}[test]"]
    session.install(*TYPECHECK_DEPS, *TEST_DEPS, *editable)
    session.run("mypy", "bidi_core", *PLUGIN_PACKAGES.values(), *session.posargs)


@nox.session(python=False)
def readme_install(session: nox.Session) -> None:
    """Follow README.md's Install section in a fresh copy of the tree; run its usage snippet.

    Builds every wheel and installs them into a fresh venv with the README's own
    ``./dev install`` line, checks ``bidi models`` lists every plugin, and runs the
    README's usage snippet against the simulated model (see ``.ci/readme_install.py``).
    """
    session.run("python", ".ci/readme_install.py", *session.posargs, external=True)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Run the demo: a spoken question, a tool call, a barge-in, with the simulated model."""
    session.install(".[resample]")
    session.run("bidi", "demo", *session.posargs)


STRANDS = "strands-agents[bidi,bidi-openai,bidi-google]==1.62.0"


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Run the benchmarks in benchmarks/ (ratios against the floor and strands-agents).

    strands-agents goes into its own venv (``.nox/bench-strands``): its Nova model pins
    ``aws-sdk-bedrock-runtime<0.12`` and the bidi plugin needs 0.12, so the two cannot
    share one environment. Writes ``benchmarks/results.md``; ``-- --quick`` for a short run.
    """
    session.install(".[serve,fast]", *(f"./plugins/{p}[test]" for p in PLUGINS))
    strands = Path(".nox/bench-strands")
    python = strands / "bin" / "python"
    if not python.exists():
        session.run("python", "-m", "venv", str(strands))
    session.run(
        "uv", "pip", "install", "--python", str(python), "-q", STRANDS, "boto3", external=True
    )
    session.run("python", "benchmarks/run.py", "--strands-python", str(python), *session.posargs)


@nox.session(python=PYTHON, default=False)
def fuzz(session: nox.Session) -> None:
    """Fuzz from_dict() and every plugin's frame decoder with 1,000 examples per test.

    CI runs the same tests with 100 examples (the ``ci`` hypothesis profile); this
    session uses ``thorough``. Pass ``HYPOTHESIS_PROFILE=...`` in the environment to
    override it, and pytest options after ``--``.
    """
    session.install(*TEST_DEPS, ".", *(f"./plugins/{p}[test]" for p in PLUGINS))
    env = {"HYPOTHESIS_PROFILE": session.env.get("HYPOTHESIS_PROFILE", "thorough")}
    args = ["--hypothesis-show-statistics", *session.posargs]
    session.run("pytest", "tests/test_fuzz.py", *args, env=env)
    for plugin in PLUGINS:
        session.run(
            "pytest",
            "-c",
            f"plugins/{plugin}/pyproject.toml",
            "--rootdir",
            f"plugins/{plugin}",
            f"plugins/{plugin}/tests/test_fuzz.py",
            *args,
            env=env,
        )
    session.run(
        "pytest",
        "-c",
        "plugins/_template/pyproject.toml",
        "--rootdir",
        "plugins/_template",
        "plugins/_template/tests/test_fuzz.py",
        *args,
        env={**env, "PYTHONPATH": "plugins/_template"},
    )


@nox.session(python=PYTHON, default=False)
def soak(session: nox.Session) -> None:
    """Soak every provider's fake: a long BidiAgent talk with forced restarts (not CI).

    Reports memory growth and lost inputs per provider. ``nox -s soak -- --minutes 2``
    for a quick run (default 10 minutes each); ``--help`` lists the options.
    """
    session.install(".", *(f"./plugins/{p}[test]" for p in PLUGINS))
    session.run("python", "tests/soak/run_soak.py", *session.posargs)
