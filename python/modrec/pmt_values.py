"""Numbers out of PMTs, as the blocks read them from the classifier's tag and message dicts.

GNU Radio builds an integer PMT as a ``long`` or a ``uint64`` (``pmt.from_uint64``, e.g. a
frame's ``frame_start``), and ``pmt.to_long`` refuses the second, so each reader would need both
branches: they live here.
"""

import pmt


def pmt_int(value):
    """The int a PMT integer (long or uint64) holds; None when ``value`` is not an integer."""
    if pmt.is_uint64(value):
        return int(pmt.to_uint64(value))
    if pmt.is_integer(value):
        return int(pmt.to_long(value))
    return None


def pmt_real(value):
    """The float a real or integer PMT (uint64 included) holds; None when ``value`` is not a number
    or is complex."""
    if pmt.is_uint64(value):
        return float(pmt.to_uint64(value))
    if not pmt.is_number(value) or pmt.is_complex(value):
        return None
    return float(pmt.to_double(value))
