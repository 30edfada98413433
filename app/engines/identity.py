"""The identity engine: the "model" returns its input, with no scorer.

For measuring the service's own path, as Triton's perf tools do: served with it, the service
does everything but run a network, so its throughput is the ceiling any model could reach
(``make bench`` measures it beside the real engines). Never for production.
"""

from __future__ import annotations

from pathlib import Path

from app.engines import Batch, Compiled, Precision, Scores


def load(path: Path, precision: Precision, threads: int) -> Compiled:
    """The version at ``path`` is not read; only its card is (by ``app.inference``)."""

    def run(batch: Batch) -> tuple[Batch, Scores | None]:
        return batch, None

    return Compiled(run=run, precision=Precision.F32, has_scorer=False)
