"""Install bidi the way README.md says, in a fresh copy of the tree, and run its snippet.

Run by ``nox -s readme_install`` (part of ``./dev test``). It:

1. copies the working tree (tracked and new files, nothing ignored) to a temporary
   directory, as a fresh clone would be;
2. runs the first code block of README.md's "## Install" section there, line by line
   in one bash (``git clone`` lines are replaced by the copy): that builds every wheel
   and installs them into a fresh ``.venv`` exactly as a user would;
3. checks ``bidi models`` in that venv lists every plugin of the repository;
4. runs the first Python block of the "## Usage" section with that venv's Python
   against the simulated model and checks it printed an answer.

Both blocks come from README.md itself, so the test breaks when the README drifts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def section_block(readme: str, heading: str, language: str) -> str:
    """The first fenced block of *language* ("" for a bare fence) under *heading*."""
    start = readme.index(f"\n{heading}\n")
    end = readme.find("\n## ", start + 1)
    section = readme[start : end if end != -1 else None]
    match = re.search(rf"^```{language}\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    if match is None:
        msg = f"README.md has no ```{language} block under {heading!r}."
        raise SystemExit(msg)
    return match.group(1)


def copy_tree(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def main() -> int:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install = section_block(readme, "## Install", "")
    usage = section_block(readme, "## Usage", "python")
    lines = [line for line in install.splitlines() if not line.startswith("git clone")]
    if not any(line.startswith("./dev install") for line in lines):
        msg = "README.md's Install block has no ./dev install line."
        raise SystemExit(msg)
    plugins = sorted(
        p.name for p in (ROOT / "plugins").glob("bidi-*") if (p / "pyproject.toml").is_file()
    )
    with tempfile.TemporaryDirectory(prefix="bidi-readme-") as tmp:
        clone = Path(tmp) / "bidi"
        copy_tree(clone)
        print(f"readme_install: running the README's Install block in {clone}:", flush=True)
        print(install, flush=True)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", "\n".join(lines)],
            cwd=clone,
            capture_output=True,
            text=True,
            check=False,
        )
        sys.stderr.write(result.stderr[-4000:])
        if result.returncode != 0:
            print(result.stdout[-4000:])
            msg = f"The README's Install block failed (exit {result.returncode})."
            raise SystemExit(msg)
        missing = [p for p in plugins if f"({p} " not in result.stdout]
        if missing:
            print(result.stdout)
            msg = f"bidi models does not list {missing} after the README's install."
            raise SystemExit(msg)
        print(result.stdout, flush=True)
        snippet = Path(tmp) / "usage.py"
        snippet.write_text(usage, encoding="utf-8")
        ran = subprocess.run(
            [str(clone / ".venv" / "bin" / "python"), str(snippet)],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if ran.returncode != 0 or "You said: Hello." not in ran.stdout:
            msg = (
                f"The README's usage snippet failed (exit {ran.returncode}):\n"
                f"{ran.stdout}\n{ran.stderr}"
            )
            raise SystemExit(msg)
        print(f"readme_install: the usage snippet printed {ran.stdout.strip()!r}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
