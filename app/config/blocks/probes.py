"""The files behind the worker's, beat's and relay's exec probes (app/config/probe.py)."""

from pathlib import Path

from ..env import env

# Where worker, beat and relay keep their probe files (an emptyDir in the pod).
PROBE_DIR = Path(env.str("PROBE_DIR", default="/tmp/die-hard"))  # noqa: S108
# Seconds between heartbeats and dependency checks; probe files older than 3 intervals fail.
PROBE_INTERVAL = env.float("PROBE_INTERVAL", default=10.0)
