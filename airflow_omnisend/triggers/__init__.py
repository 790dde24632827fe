"""Triggers that wait for Omnisend batches in the triggerer."""

from __future__ import annotations
