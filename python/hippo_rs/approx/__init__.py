"""``hippo-rs approx``: online function approximation (HiPPO paper, section 4.3, Figure 4, Table 3).

Streams a signal through HiPPO memories of order N (LegS, and LegT/LMU with a window equal to the
record), reconstructs the whole history from each final state, and reports per measure the mean
squared error, the error of the optimal degree-(N-1) least-squares polynomial fit of the same record
(uniform weight: the best any N coefficients of polynomials can do, and what exact LegS would give),
steps per second of the streaming update and wall time. Writes a plot like the paper's Figure 4.

Default signal: ``hippo_rs.signals.white_signal`` (10^6 samples, dt = 1e-4, cutoff 1 Hz, RMS 0.5).
``--input`` reads .npy, .csv, .txt/.dat (one column, or the one chosen by ``--column``) or .wav
(channels averaged unless ``--column`` picks one, PCM scaled to [-1, 1], dt = 1/rate). The measures
run side by side on threads (``--jobs``); bad input is one line on stderr and exit status 2.
The memories start from the constant history f(0) (state f(0) e_0; ``--zero-init`` for zeros).

The package is split by concern: ``cli`` (arguments, exit status), ``signal_io`` (reading files),
``job`` (streaming and timing), ``fit`` (the optimal least-squares reference), ``plot`` and ``report``.
"""

from __future__ import annotations

from .cli import main
from .fit import optimal_fit
from .job import run
from .signal_io import load_signal

__all__ = ["load_signal", "main", "optimal_fit", "run"]
