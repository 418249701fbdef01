"""What the test tiers share: helpers to import, and fixtures that tests/conftest.py
registers for every tier (pytest_plugins)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout: manage.py, chat/, tests/
