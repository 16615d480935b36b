"""The plugins the bidi repository ships, how to install them, and model-name suggestions.

The packages are not on a package index: they install from a clone of the repository
(``./dev install NAME``, see the README's Install section). Messages that tell a user
to install something name these real distributions, never a guessed one.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "KNOWN_PLUGINS",
    "install_hint",
    "suggest_models",
    "unknown_model_message",
]

#: Registry name -> distribution, for the plugins in this repository (``plugins/<dist>``).
KNOWN_PLUGINS: dict[str, str] = {
    "gemini_live": "bidi-gemini-live",
    "nova_sonic": "bidi-nova-sonic",
    "openai_realtime": "bidi-openai-realtime",
}
#: Shortest name matched as a prefix or a substring of a model name ("ai" matches nothing).
_MIN_PART = 3


def install_hint(distribution: str, extra: str | None = None) -> str:
    """Say how to install *distribution* (with *extra*) when it is one of ours.

    Returns a sentence such as ``"install it from a clone of bidi: ./dev install
    bidi-openai-realtime[test]"``; for a distribution this repository does not ship,
    ``"reinstall <dist>[extra] the way you installed it"``.
    """
    target = f"{distribution}[{extra}]" if extra else distribution
    if distribution == "bidi-core" or distribution in KNOWN_PLUGINS.values():
        return (
            f"install it from a clone of the bidi repository: ./dev install {target} "
            "(the README's Install section)"
        )
    return f"install {target} the way you installed {distribution}"


def _normal(name: str) -> str:
    text = name.strip().lower().replace("-", "_").replace(" ", "_")
    return text.removeprefix("bidi_")


def suggest_models(name: str, candidates: Iterable[str]) -> list[str]:
    """Return the candidates *name* most likely meant, best first (maybe none).

    An exact match after normalizing (case, ``-``, a ``bidi-`` prefix, so a
    distribution name works) wins; then candidates that start with the name, or that
    the name starts with (``"openai"`` -> ``openai_realtime``); then candidates that
    contain it (``"sonic"`` -> ``nova_sonic``); then close spellings
    (``"nova_sonik"``). Parts shorter than three characters match only by spelling.
    """
    options = sorted(set(candidates))
    wanted = _normal(name)
    if not wanted:
        return []
    for tier in (
        [o for o in options if _normal(o) == wanted],
        [
            o
            for o in options
            if len(wanted) >= _MIN_PART
            and (_normal(o).startswith(wanted) or wanted.startswith(_normal(o)))
        ],
        [o for o in options if len(wanted) >= _MIN_PART and wanted in _normal(o)],
    ):
        if tier:
            return tier
    import difflib  # noqa: PLC0415 - only when a name was mistyped

    normal = {_normal(o): o for o in options}
    return [normal[m] for m in difflib.get_close_matches(wanted, list(normal), n=2, cutoff=0.6)]


def _quoted(names: list[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def unknown_model_message(name: str, installed: list[str], broken: list[str]) -> str:
    """The message of :class:`~bidi_core.UnknownModelError` for *name*.

    It suggests the installed or shipped models *name* most likely meant, lists the
    installed ones and says how to install a plugin the repository ships.
    """
    available = ", ".join(installed) if installed else "none"
    failed = f" Plugins that failed to load: {', '.join(broken)}." if broken else ""
    if not name.strip():
        return (
            f"No model name given ({name!r}). Installed models: {available}.{failed} "
            "Pass one of them, e.g. get_model('simulated')."
        )
    guesses = suggest_models(name, [*installed, *KNOWN_PLUGINS])
    missing = [g for g in guesses if g not in installed]
    parts = [f"Unknown model: {name!r}."]
    meant = [g for g in guesses if g != name]
    if meant:
        parts.append(f"Did you mean {_quoted(meant)}?")
    parts.append(f"Installed models: {available}.{failed}")
    if len(missing) == 1:
        dist = KNOWN_PLUGINS[missing[0]]
        parts.append(
            f"{missing[0]!r} comes from {dist}, which is not installed; {install_hint(dist)}."
        )
    elif missing:
        dists = " ".join(KNOWN_PLUGINS[g] for g in missing)
        parts.append(
            f"{_quoted(missing).replace(' or ', ' and ')} come from plugins that are not "
            f"installed; install them from a clone of the bidi repository: ./dev install {dists}."
        )
    else:
        shipped = ", ".join(n for n in KNOWN_PLUGINS if n not in installed)
        if shipped:
            parts.append(
                f"Models come from plugins; the bidi repository also ships {shipped} "
                "(./dev install NAME from a clone)."
            )
        else:
            parts.append("Models come from installed plugins; `bidi models` lists them.")
    return " ".join(parts)
