"""Python blocks that stay alive as long as the flowgraph that connects them.

GNU Radio 3.10 runs a Python block through a C++ gateway that holds only a borrowed handle on
the Python object (block_gateway's ``py::handle``), and a Python hierarchical block's inner
blocks are held only by the Python hier object. So ``tb.connect(src, modrec.classifier(), snk)``,
or a block kept in a local variable of a helper that builds the flowgraph, is garbage-collected
while the flowgraph still calls it, and the process dies in the scheduler (segmentation fault).

``flowgraph_owned`` fixes that for every block of this module: connecting a block (GNU Radio's
``connect`` / ``msg_connect`` ask it for ``to_basic_block()``) hands a reference to the
flowgraph doing the connecting, the top block or hierarchical block whose ``connect`` runs, so
the block lives exactly as long as that flowgraph's Python object. That object is found on the
call stack: ``gr.hier_block2.connect`` (top_block inherits it) calls ``to_basic_block()`` on its
endpoints from inside itself, with ``self`` the flowgraph. A block connected some other way (no
flowgraph on the stack) is kept in a module-level list instead, for the life of the process.
A user's hierarchical block that holds one of ours is handed on the same way when it is connected
(its ``to_basic_block`` is wrapped), so an inline hier block does not take ours with it.
"""

import functools
import sys

from gnuradio import gr

# How many frames up from to_basic_block() the connecting flowgraph's method may be: connect's
# wrapper, the list comprehension inside it, and the connect method itself.
_MAX_DEPTH = 8
_OWNER_ATTR = "_modrec_owned_blocks"
_ORPHANS = []  # blocks connected by something other than a hier_block2/top_block method


def _connecting_flowgraph():
    """The hier_block2 (or top_block) whose method called to_basic_block(), or None."""
    frame = sys._getframe(3)  # 0 here, 1 _hand_to_flowgraph, 2 to_basic_block, 3 its caller
    for _ in range(_MAX_DEPTH):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, gr.hier_block2):
            return owner
        frame = frame.f_back
    return None


def _hand_to_flowgraph(block):
    owner = _connecting_flowgraph()
    if owner is block:  # a hierarchical block wiring its own ports (self.connect(self, ...))
        return
    if owner is None:
        if not any(b is block for b in _ORPHANS):
            _ORPHANS.append(block)
        return
    owned = owner.__dict__.setdefault(_OWNER_ATTR, [])
    if not any(b is block for b in owned):  # identity: blocks may define __eq__
        owned.append(block)
    # A user's hierarchical block holding ours may itself be built inline: it must then be handed
    # to whatever connects it, as ours are, or it would take our block with it when collected.
    if not isinstance(owner, (gr.top_block, flowgraph_owned)) and "to_basic_block" not in owner.__dict__:
        owner.__dict__["to_basic_block"] = functools.partial(_adopted_to_basic_block, owner)


def _adopted_to_basic_block(hier):
    # same call depth as flowgraph_owned.to_basic_block (partial adds no Python frame)
    _hand_to_flowgraph(hier)
    return hier._impl.to_basic_block()


class flowgraph_owned:
    """Mixin (first base) for this module's Python blocks: see the module docstring."""

    def to_basic_block(self):
        _hand_to_flowgraph(self)
        base = super()
        if hasattr(base, "to_basic_block"):  # gr.sync_block & co. (gateway_block defines it)
            return base.to_basic_block()
        return self._impl.to_basic_block()  # gr.hier_block2 reaches its C++ object through _impl
