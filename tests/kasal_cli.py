"""``kasal`` with the test models registered: ``python -m tests.kasal_cli serve ...`` (the
tests that run Kasal in a subprocess)."""

from __future__ import annotations

from adapters.crewai.offline_env import apply

apply()

from kasal.cli import main  # noqa: E402
from tests.models import register_test_models  # noqa: E402

if __name__ == "__main__":
    register_test_models()
    main()
