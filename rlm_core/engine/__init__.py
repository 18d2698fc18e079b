"""The RLM run: DSPy program, LM construction, the DSPy-callback to hook bridge.

Only :mod:`rlm_core.engine.runner` is light to import; the other modules import DSPy.

Internal: use :func:`rlm_core.run`; names here may change without notice.
"""

from __future__ import annotations

from rlm_core.engine.runner import new_run_id, run

__all__ = ["new_run_id", "run"]
