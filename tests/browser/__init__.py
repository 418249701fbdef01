"""Chromium, driven by Playwright, against a live site: what a user sees and does."""
