"""Imported only by the worker pool's forkserver (as a preload): it dies with the operator.

``multiprocessing``'s forkserver outlives an operator killed with SIGKILL, and so would the
workers it forked, still computing beside the operator's successor. Importing this module
makes the importing process die with its parent; each worker does the same for itself (the
pool's initializer), so the whole tree goes with the operator. Nothing else may import this
module: in the operator it would tie the operator's life to that of its own parent.
"""

from __future__ import annotations

from jobgate.lifeline import die_with_parent

die_with_parent()
