"""Sensors for users wiring their own DAGs."""

from __future__ import annotations
