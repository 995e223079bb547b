"""The bounds every experiment key and CLI flag is checked against (a light module: the CLI reads it to build
its parsers without loading the schema)."""

MAX_SEED = 2**32 - 1  # numpy's SeedSequence and Optuna's samplers take seeds in [0, 2^32)
# Where the analytic TCP model the search uses (simulator.network.tcp) agrees with the segment-level simulation
# (tests/simulator/network/test_network_simulation.py holds them together up to here); beyond it the search would rank plans by
# transfer times that the simulation does not reproduce, so the search refuses it (netsim still simulates it).
MAX_ANALYTIC_LOSS = 0.1
# Sanity bounds: beyond them the sums overflow or the answer means nothing (a one-year RTT, a 1 Pbit/s uplink).
MAX_RATE_BPS = 1e15
MAX_DURATION_S = 3600.0
MAX_SIZE_BYTES = 2.0**50
MAX_SWEEP_CELLS = 10_000  # each cell is a full search of seconds: more is days of work, and memory grows per cell
# Frames one fleet simulation may hold: the recursions keep about 80 bytes a frame (arrival, device, group,
# link and GPU times), so this keeps one run under 1 GB; runs are sequential, so seeds do not add up.
MAX_FRAMES_PER_RUN = 10_000_000
