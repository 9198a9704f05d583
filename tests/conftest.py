"""Hypothesis profiles: 'ci' (the default) and 'long' for runs outside CI.

HYPOTHESIS_PROFILE=long python -m pytest tests/protocol
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", deadline=None, max_examples=100_000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
