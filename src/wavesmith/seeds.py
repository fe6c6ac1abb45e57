"""One seed hash for every place that derives many random streams from one seed.

Training crops (``db.ClipDataset``: seed, epoch, clip index) and generated files
(``generate.file_seed``: seed, file index) each need a well-spread integer per item that
does not depend on the order items are visited in, so that resuming, another worker count
or ``-n 1`` gives the same draws.
"""

from __future__ import annotations

_MASK64 = (1 << 64) - 1


def mix64(a: int, b: int = 0, c: int = 0) -> int:
    """A well-spread 64-bit integer of three integers: the splitmix64 finaliser (Steele et al., 2014)
    of their sum weighted by three odd 64-bit constants."""
    z = (int(a) * 0x9E3779B97F4A7C15 + int(b) * 0xD1B54A32D192ED03 + int(c) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)
