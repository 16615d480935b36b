"""The version of bidi-nova-sonic."""

__version__ = "0.1.0"
