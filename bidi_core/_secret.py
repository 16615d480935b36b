"""A wrapper that keeps a credential out of reprs, logs, ``vars()`` and tracebacks."""

from __future__ import annotations

from typing import Any, NoReturn, cast

__all__ = ["Secret"]


class Secret:
    """A credential (API key, token) that never shows itself by accident.

    ``repr()``, ``str()``, f-strings and ``format()`` give ``'***'``; the instance has
    no ``__dict__`` (``vars()`` raises ``TypeError``) and cannot be changed. Code that
    must hand the value to a client library calls :meth:`reveal` at that point, so the
    plaintext lives only in the client's own call. Equality compares in constant time.

    Args:
        value: The secret text. Passing a ``Secret`` wraps the same value.

    Raises:
        TypeError: ``value`` is not a ``str`` or a ``Secret``.

    Example::

        key = Secret(os.environ["OPENAI_API_KEY"])
        headers = {"Authorization": f"Bearer {key.reveal()}"}
        print(key)  # ***
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value._value
        if not isinstance(cast(object, value), str):  # for callers without type checks
            msg = (
                f"Secret takes the secret as a str, got {type(value).__name__}; "
                "pass the key or token text."
            )
            raise TypeError(msg)
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the plaintext; call it only where a client library needs the value."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, format_spec: str) -> str:
        return format("***", format_spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac  # noqa: PLC0415 - keeps hashlib off `import bidi_core`

        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        msg = "A Secret cannot be changed; make a new one."
        raise AttributeError(msg)

    def __delattr__(self, name: str) -> NoReturn:
        msg = "A Secret cannot be changed; make a new one."
        raise AttributeError(msg)

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        return (Secret, (self._value,))
