"""Test rig: throwaway real services (PostgreSQL clusters, and later sshd, namespaces).

Fixtures here are reused by every test tree; ``tests/conftest.py`` registers
them with pytest.
"""
