"""The error of :mod:`ivri.its`: a message that cannot be decoded, encoded or validated.

It subclasses :class:`ValueError` too, because a malformed message is a bad value, and callers
that only know Python's built-ins can still catch it.
"""

from __future__ import annotations

from ivri.errors import IvriError

__all__ = ["MessageError"]


class MessageError(IvriError, ValueError):
    """An ITS message is malformed, out of range, too large or of an unsupported form.

    The text is always one line, so a gateway can log it next to the sender's address.
    """
