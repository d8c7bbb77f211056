"""Tables of road users or requests as one numpy array per column (not public).

:class:`~.v2x.V2XObservation` and :class:`~.priority.PriorityRequests` are both such
tables: applications filter their rows with numpy masks, never with a Python loop. A
subclass is a ``@dataclass`` whose fields are the columns, in the order of its ``DTYPES``.
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np

__all__ = ["Rows"]


class Rows:
    """Columns coerced to their dtype and checked to be of one length; empty and concat."""

    #: Column name -> dtype, in field order.
    DTYPES: ClassVar[dict[str, type]] = {}

    def __post_init__(self) -> None:
        n: int | None = None
        for name, dtype in self.DTYPES.items():
            a: np.ndarray = np.ascontiguousarray(getattr(self, name), dtype=dtype).reshape(-1)
            if n is None:
                n = len(a)
            elif len(a) != n:
                raise ValueError(f"{type(self).__name__}: column {name!r} has {len(a)} rows, expected {n}")
            setattr(self, name, a)

    def __len__(self) -> int:
        return len(getattr(self, next(iter(self.DTYPES))))

    @classmethod
    def empty(cls) -> Self:
        """A table without rows."""
        return cls(**{name: np.zeros(0, dtype=dtype) for name, dtype in cls.DTYPES.items()})

    @classmethod
    def concat(cls, parts: list[Self]) -> Self:
        """All rows of several tables in one."""
        if not parts:
            return cls.empty()
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.DTYPES})
