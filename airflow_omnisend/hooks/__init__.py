"""The only code that speaks HTTP to Omnisend."""

from __future__ import annotations
