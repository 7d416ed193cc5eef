"""Fixtures shared by every test in the workspace."""

pytest_plugins = ["pulih.kit.testing"]
