#!/usr/bin/env python3
#
# Copyright 2026 gr-modrec developers.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for the compiled part of the module: the library and its pybind11 bindings load."""

from gnuradio import gr_unittest

try:
    from gnuradio import modrec
except ImportError:
    import os
    import sys

    sys.path.append(os.path.join(os.path.dirname(__file__), "..", ".."))
    from gnuradio import modrec


class qa_bindings(gr_unittest.TestCase):
    def test_001_library_version_matches_python_package(self):
        from gnuradio.modrec import modrec_python

        self.assertEqual(modrec_python.version(), modrec.__version__)


if __name__ == "__main__":
    gr_unittest.run(qa_bindings)
